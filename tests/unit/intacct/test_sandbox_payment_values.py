"""Property-based: the Intacct sandbox reads the untrusted values of a payment (amounts, mm/dd/yyyy dates)
into money and dates or refuses them as Intacct would (a function failure), and never fails otherwise."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sandbox.intacct.errors import FunctionFailure
from sandbox.intacct.receivables import parse_amount, parse_us_date

AMOUNT_ALPHABET = "0123456789.-+eE ,_" + "\u0660\u0967\uff11"  # other scripts' digits too


@given(st.one_of(st.text(), st.text(alphabet=AMOUNT_ALPHABET, max_size=40)))
def test_an_amount_is_money_greater_than_zero_or_a_refusal(text: str) -> None:
    try:
        value = parse_amount(text, "TRX_PAYMENTAMOUNT")
    except FunctionFailure as failure:
        errors = failure.errors
    else:
        errors = []
    if errors:
        assert errors[0].errorno == "BL01001973"
        return
    assert value > 0
    assert value == value.quantize(Decimal("0.01"))
    assert value == Decimal(text.strip())
    assert text.strip().isascii()


@given(st.decimals(min_value=Decimal("0.01"), max_value=Decimal("999999999999999"), places=2))
def test_every_amount_in_cents_is_read_back(value: Decimal) -> None:
    assert parse_amount(f"{value:f}", "amount") == value


@pytest.mark.parametrize(
    "text", ["0", "0.00", "-1", "1.001", "1e3", "NaN", "Infinity", "", " ", "1,000", "\u0661\u0662"]
)
def test_amounts_intacct_would_not_take_are_refused(text: str) -> None:
    with pytest.raises(FunctionFailure):
        parse_amount(text, "amount")


@given(st.one_of(st.text(max_size=30), st.text(alphabet="0123456789/ ", max_size=12)))
def test_a_date_is_a_calendar_day_or_none(text: str) -> None:
    value = parse_us_date(text)
    if value is not None:
        month, day, year = (int(part) for part in text.strip().split("/"))
        assert value == date(year, month, day)


@given(st.dates(min_value=date(1000, 1, 1)))
def test_every_day_is_read_back(day: date) -> None:
    assert parse_us_date(day.strftime("%m/%d/%Y")) == day
