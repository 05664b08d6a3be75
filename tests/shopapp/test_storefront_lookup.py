"""The storefront's one order lookup (tracking page and returns portal): the name a shopper
types, in any case, with or without '#', in any digits, and the bare number of a
custom-prefixed name, found through an index rather than by reading every order of every shop
(bench/returns.py measured 31 ms at 100k orders on PostgreSQL).

The plan is read back with EXPLAIN on whichever database runs the suite (SQLite, PostgreSQL).
The test tables are tiny, so PostgreSQL is told to avoid sequential scans: the test checks that
the index *can* serve the query as written, which ``name__iexact`` could not.
"""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from shopapp.models import Order
from shopapp.storefront.lookup import (
    Proof,
    order_number_parse,
    proof_parse,
    storefront_order_lookup,
)
from tests.returns.domain_support import make_order, make_shop

pytestmark = pytest.mark.django_db
CONTACT = "ada@example.com"


@pytest.fixture
def shop():
    return make_shop()


def lookup(shop, typed: str, contact: str = CONTACT) -> Order | None:
    """What a storefront page finds for what the shopper typed (parsed as the forms do)."""
    proof = proof_parse(contact, kinds=("email", "phone", "postal"))
    assert isinstance(proof, Proof)
    return storefront_order_lookup(shop=shop, number=order_number_parse(typed), proof=proof)


@pytest.mark.parametrize("typed", ["1001", "#1001", "#1001 ", " 1001"])
def test_a_shopify_name_is_found_with_or_without_its_hash(shop, typed):
    order = make_order(shop, 1001)
    make_order(shop, 1002)

    assert lookup(shop, typed) == order


@pytest.mark.parametrize("typed", ["EU-1010", "eu-1010", "Eu-1010", "#eu-1010", "1010"])
def test_a_custom_prefixed_name_is_found_in_any_case_and_by_its_number(shop, typed):
    order = make_order(shop, 1010, name="EU-1010", order_number=1010)
    make_order(shop, 1011, name="EU-1011", order_number=1011)

    assert lookup(shop, typed) == order


def test_the_lookup_stays_in_its_shop_and_needs_the_contact(shop):
    other = make_shop("beta.myshopify.com")
    make_order(other, 1001)

    assert lookup(shop, "1001") is None
    mine = make_order(shop, 1001)
    assert lookup(shop, "#1001", contact="eve@example.com") is None
    assert lookup(shop, "#1001") == mine


def plan(sql: str) -> str:
    """The database's plan for ``sql``, as one string."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Statistics of this test's rows, not of whatever ran before (the expression
            # index has its own); and only inside the test's transaction: a tiny table is
            # otherwise read whole.
            cursor.execute("ANALYZE shopapp_order")
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute("EXPLAIN " + sql)
        else:
            cursor.execute("EXPLAIN QUERY PLAN " + sql)
        return "\n".join(" ".join(str(col) for col in row) for row in cursor.fetchall())


def lookup_sql(shop, typed: str) -> str:
    with CaptureQueriesContext(connection) as captured:
        lookup(shop, typed)
    (query,) = captured.captured_queries
    return query["sql"]


# The name's own index, or on PostgreSQL the admin search's prefix index on the same
# (shop, UPPER(name)) (shopapp 0008: text_pattern_ops answers equality too); either serves it.
NAME_INDEXES = ("order_shop_upper_name_idx", "order_search_upper_name_prefix_idx")


@pytest.mark.parametrize(
    ("typed", "indexes"),
    [
        ("eu-1010", [NAME_INDEXES]),
        ("1010", [NAME_INDEXES, ("order_shop_number_idx",)]),
    ],
)
def test_the_lookup_query_is_served_by_the_order_indexes(shop, typed, indexes):
    # given a shop with orders, and another shop's
    for number in range(1000, 1040):
        make_order(shop, number, name=f"EU-{number}", order_number=number)
    make_order(make_shop("beta.myshopify.com"), 1010, name="EU-1010", order_number=1010)

    # when the plan of the lookup's one query is read
    found = plan(lookup_sql(shop, typed))

    # then every branch of the match goes through its index, none reads the table whole
    for alternatives in indexes:
        assert any(index in found for index in alternatives), found
    assert "SCAN shopapp_order" not in found  # SQLite's full table scan
    assert "Seq Scan" not in found


SPELLINGS_OF_1011 = [
    "1011",
    "#1011",
    "01011",
    "0000001011",
    " # 1011 ",
    "\uff11\uff10\uff11\uff11",  # fullwidth
    "\u0661\u0660\u0661\u0661",  # Arabic-Indic
    "\u0967\u0966\u0967\u0967",  # Devanagari
]


@pytest.mark.parametrize("typed", SPELLINGS_OF_1011)
def test_every_spelling_of_a_number_is_one_order_and_one_rate_limit_key(shop, typed):
    order = make_order(shop, 1011)

    number = order_number_parse(typed)

    # then the rate limit counts them as one order, and the lookup finds that order
    assert number is not None
    assert number.key == "number:1011"
    assert lookup(shop, typed) == order


@pytest.mark.parametrize("typed", ["", "#", "   ", "x" * 41])
def test_what_is_no_order_number_is_refused(typed):
    assert order_number_parse(typed) is None


def test_a_proof_of_the_wrong_kind_never_matches(shop):
    # given an order whose email, phone and postal code are known
    order = make_order(shop, 1001, phone="+1 212 555 0123", shipping_zip="10001")

    # then each kind matches its own field only
    assert lookup(shop, "1001", contact="(212) 555-0123") == order
    assert lookup(shop, "1001", contact="10001") == order
    assert lookup(shop, "1001", contact="10002") is None
    assert proof_parse("10001", kinds=("email", "phone")) is None
