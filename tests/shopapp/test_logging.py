"""The key=value log format masks secrets and shopper data whatever a caller passes."""

import logging

from shopapp.logging import KeyValueFormatter


def make_record(**extra) -> logging.LogRecord:
    record = logging.LogRecord(
        name="shopapp.test",
        level=logging.INFO,
        pathname=__file__,
        lineno=1,
        msg="auth.token_exchange.done",
        args=None,
        exc_info=None,
    )
    for key, value in extra.items():
        setattr(record, key, value)
    return record


def test_token_and_email_fields_are_masked():
    # given
    record = make_record(
        shop="alpha.myshopify.com",
        token="shpat_live_secret",
        access_token="shpat_abc",
        id_token="eyJhbGciOiJIUzI1NiJ9.x.y",
        email="ada@example.com",
        Phone="+33 6 12 34 56 78",
    )
    # when
    line = KeyValueFormatter().format(record)
    # then
    assert line.endswith(
        "INFO shopapp.test auth.token_exchange.done shop=alpha.myshopify.com token=[masked] "
        "access_token=[masked] id_token=[masked] email=[masked] Phone=[masked]"
    )
    for leaked in ("shpat", "eyJ", "ada@example.com", "+33"):
        assert leaked not in line


def test_plain_facts_are_printed_as_key_value():
    # given
    record = make_record(shop="alpha.myshopify.com", topic="orders/create", attempts=2)
    # when
    line = KeyValueFormatter().format(record)
    # then
    assert line.split(" ", 1)[1] == (
        "INFO shopapp.test auth.token_exchange.done shop=alpha.myshopify.com "
        "topic=orders/create attempts=2"
    )
