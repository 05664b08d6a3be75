"""Shopify as it is: the app's GraphQL and the devshop's SDL checked against Shopify's own
published Admin schema (2026-01, tests/fixtures/shopify/schema/SOURCE.md).

    every document the app sends ─ graphql-core validate ─ no deprecated field, no unknown one
    the devshop's SDL ─ each type, field, enum value and interface it declares is Shopify's

The app targets 2026-10, whose schema is not published as a file: what 2026-10 adds and the
app or the devshop uses is named below, once, with the reference page it comes from, rather
than loosening the checks.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from functools import cache
from pathlib import Path

import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    TypeInfo,
    TypeInfoVisitor,
    Visitor,
    build_schema,
    extend_schema,
    parse,
    validate,
    visit,
)

from returns import catalogue as returns_catalogue
from returns import shopify as returns_shopify
from tests.conftest import REPO

SCHEMA_FILE = (
    Path(__file__).resolve().parent.parent / "fixtures/shopify/schema/admin-2026-01.graphql"
)
# Added by 2026-10 (shopify.dev 2026-10 reference: ExchangeLineItem, OrderDisplayFulfillmentStatus).
ADDED_IN_2026_10 = """
extend type ExchangeLineItem { productId: ID title: String }
extend enum OrderDisplayFulfillmentStatus { FULFILLMENT_NOT_REQUIRED }
"""
APPS = ("shopapp", "tracking", "returns", "notifications")
_DOCUMENT = re.compile(r"\s*(query|mutation)\b")


@cache
def shopify_schema() -> GraphQLSchema:
    base = build_schema(SCHEMA_FILE.read_text(), assume_valid=True)
    return extend_schema(base, parse(ADDED_IN_2026_10), assume_valid=True)


def app_documents() -> dict[str, str]:
    """Every GraphQL document the app sends: module constants, and the built ones."""
    documents: dict[str, str] = {}
    for app in APPS:
        package = importlib.import_module(app)
        for info in pkgutil.walk_packages(package.__path__, f"{app}."):
            if ".migrations" in info.name or ".management" in info.name:
                continue
            module = importlib.import_module(info.name)
            for name, value in vars(module).items():
                if isinstance(value, str) and _DOCUMENT.match(value):
                    documents[f"{info.name}.{name}"] = value
    for count in (1, 3):
        documents[f"returns.shopify._product_variants_query({count})"] = (
            returns_shopify._product_variants_query(count, returns_shopify.PRODUCT_VARIANTS_FIELDS)
        )
        documents[f"returns.shopify._variant_prices_query({count})"] = (
            returns_shopify._variant_prices_query(count)
        )
        documents[f"returns.catalogue._variants_live_query({count})"] = (
            returns_catalogue._variants_live_query(count)
        )
    return documents


def test_the_app_sends_documents_this_test_finds():
    # A refactor that hid every query from this test would make the next one pass vacuously.
    assert len(app_documents()) >= 20


class _DeprecatedUse(Visitor):
    def __init__(self, type_info: TypeInfo) -> None:
        super().__init__()
        self.type_info = type_info
        self.found: list[str] = []

    def enter_field(self, node, *_args):
        field = self.type_info.get_field_def()
        parent = self.type_info.get_parent_type()
        if field is not None and field.deprecation_reason:
            self.found.append(f"{parent}.{node.name.value}: {field.deprecation_reason}")

    def enter_enum_value(self, node, *_args):
        enum = self.type_info.get_input_type()
        value = getattr(enum, "values", {}).get(node.value) if enum else None
        if value is not None and value.deprecation_reason:
            self.found.append(f"{enum}.{node.value}: {value.deprecation_reason}")


@pytest.mark.parametrize("name", sorted(app_documents()))
def test_every_document_the_app_sends_is_valid_in_shopifys_schema(name):
    document = parse(app_documents()[name])
    errors = validate(shopify_schema(), document)
    assert [e.message for e in errors] == []


@pytest.mark.parametrize("name", sorted(app_documents()))
def test_no_document_the_app_sends_reads_a_deprecated_field(name):
    schema = shopify_schema()
    type_info = TypeInfo(schema)
    finder = _DeprecatedUse(type_info)
    visit(parse(app_documents()[name]), TypeInfoVisitor(type_info, finder))
    assert finder.found == []


# --- the devshop's SDL ---------------------------------------------------------------------

DEVSHOP_SDL = REPO / "devshop" / "graphql" / "schema.graphql"


@cache
def devshop_schema() -> GraphQLSchema:
    return build_schema(DEVSHOP_SDL.read_text())


def _named_types(schema: GraphQLSchema) -> dict:
    return {n: t for n, t in schema.type_map.items() if not n.startswith("__")}


def test_every_enum_value_the_devshop_accepts_is_shopifys():
    shopify = _named_types(shopify_schema())
    extra = []
    for name, kind in _named_types(devshop_schema()).items():
        if not isinstance(kind, GraphQLEnumType) or name not in shopify:
            continue
        extra += [f"{name}.{v}" for v in kind.values if v not in shopify[name].values]
    assert extra == [], "the devshop accepts values Shopify rejects"


def test_every_field_the_devshop_serves_is_shopifys():
    shopify = _named_types(shopify_schema())
    extra = []
    for name, kind in _named_types(devshop_schema()).items():
        if not isinstance(kind, GraphQLObjectType | GraphQLInterfaceType) or name not in shopify:
            continue
        theirs = shopify[name].fields
        extra += [f"{name}.{field}" for field in kind.fields if field not in theirs]
    assert extra == [], "fields Shopify's schema does not have"


def test_the_devshops_error_types_implement_shopifys_interfaces():
    shopify = _named_types(shopify_schema())
    missing = []
    for name, kind in _named_types(devshop_schema()).items():
        if not isinstance(kind, GraphQLObjectType) or name not in shopify:
            continue
        ours = {i.name for i in kind.interfaces}
        theirs = {i.name for i in shopify[name].interfaces}
        # Node and the like come with the fields the devshop serves; errors must be
        # DisplayableError wherever Shopify's are (clients select them through it).
        if "DisplayableError" in theirs and "DisplayableError" not in ours:
            missing.append(name)
    assert missing == []
