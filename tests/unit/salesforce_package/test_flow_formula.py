"""sandbox/salesforce/flow_formula.py reads the subset of formula syntax the package's entry conditions
use, evaluates it the way Salesforce describes ISNEW, ISCHANGED, PRIORVALUE and ISBLANK, and refuses
anything else by name; the package's Opportunity flow is written in that subset and watches every field
a synced order depends on."""

from __future__ import annotations

from typing import Any

import pytest

from sandbox.salesforce.flow_formula import FormulaError, parse_formula
from sandbox.salesforce.package import load_package

WON = {"IsWon": True, "Amount": 100.0, "Intacct_Order_Id__c": None, "Description": None}
INTEGRATION = "Sfintacct_Integration_User"
# What a won deal's Intacct order is made from, besides its products (whose change moves the Amount).
ORDER_FIELDS = {"IsWon", "Amount", "AccountId", "CloseDate", "StageName", "Pricebook2Id"}


def holds(
    text: str,
    after: dict[str, Any],
    before: dict[str, Any] | None = None,
    permissions: frozenset[str] = frozenset(),
) -> bool:
    return parse_formula(text).evaluate(after, before, is_new=before is None, permissions=permissions)


def opportunity_formula() -> str:
    (trigger,) = load_package().outbound_message("Opportunity_Closed_Won").triggers
    assert trigger.formula is not None
    return trigger.formula


# --- reading --------------------------------------------------------------------------------------------


def test_reads_functions_merge_fields_literals_and_operators() -> None:
    formula = parse_formula(
        "and(NOT({!$Permission.Quiet}), OR(ISNEW(), ISCHANGED({!$Record.Amount})),\n"
        "  ({!$Record.IsWon} && TRUE) || NOT(ISBLANK(PRIORVALUE({!$Record.Name}))), FALSE || true)"
    )

    assert formula.fields == {"Amount", "IsWon", "Name"}
    assert formula.changed_fields == {"Amount"}
    assert formula.permissions == {"Quiet"}


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ('ISPICKVAL({!$Record.StageName}, "Closed Won")', "the function ISPICKVAL() is not read"),
        ("{!$Record.Amount} > 100", "unsupported formula syntax"),
        ("{!$Record.Amount} = 100", "unsupported formula syntax"),
        ('{!$Record.Name} = "x"', "unsupported formula syntax"),
        ("{!$Record__Prior.IsWon}", "the merge field {!$Record__Prior.IsWon} is not read"),
        ("{!$User.Id}", "the merge field {!$User.Id} is not read"),
        ("IsWon", "the name 'IsWon' is not read"),
        ("ISCHANGED(IsWon)", "the name 'IsWon' is not read"),
        ("ISCHANGED(ISNEW())", "ISCHANGED() takes one field"),
        ("PRIORVALUE({!$Permission.Quiet})", "PRIORVALUE() takes one field"),
        ("ISBLANK(TRUE)", "ISBLANK() takes one field"),
        ("AND(ISNEW())", "AND() needs at least two conditions"),
        ("NOT(ISNEW(), ISNEW())", "NOT() takes one condition"),
        ("ISNEW(TRUE)", "ISNEW() takes no argument"),
        ("ISNEW() && TRUE || FALSE", "&& and || mixed without parentheses"),
        ("AND(ISNEW(), TRUE", "the formula ends too early"),
        ("ISNEW() ISNEW()", "unexpected 'ISNEW'"),
        ("OR(ISNEW(), 1)", "the number literal 1 is not read"),
        ("!ISNEW()", "unsupported formula syntax"),
        ("   ", "the formula is empty"),
    ],
)
def test_refuses_what_it_does_not_read_by_name(text: str, complaint: str) -> None:
    with pytest.raises(FormulaError) as caught:
        parse_formula(text)

    assert complaint in str(caught.value)


def test_a_field_used_as_a_condition_must_be_a_checkbox_of_the_object() -> None:
    types = {"IsWon": "boolean", "Amount": "currency"}
    parse_formula("AND({!$Record.IsWon}, PRIORVALUE({!$Record.IsWon}))").check_fields(types.get)

    with pytest.raises(FormulaError, match="Amount} is used as a condition"):
        parse_formula("OR({!$Record.Amount}, ISNEW())").check_fields(types.get)
    with pytest.raises(FormulaError, match="Nope__c}, a field the object does not have"):
        parse_formula("ISCHANGED({!$Record.Nope__c})").check_fields(types.get)


# --- evaluating -----------------------------------------------------------------------------------------


def test_isnew_ischanged_and_priorvalue_as_salesforce_describes_them() -> None:
    # ISCHANGED is false on a new record; PRIORVALUE on a new record is the value being saved.
    assert holds("ISNEW()", WON)
    assert not holds("ISCHANGED({!$Record.Amount})", WON)
    assert holds("PRIORVALUE({!$Record.IsWon})", WON)
    assert not holds("ISNEW()", WON, WON)
    assert holds("ISCHANGED({!$Record.Amount})", {**WON, "Amount": 120.0}, WON)
    assert holds("ISCHANGED({!$Record.Amount})", {**WON, "Amount": None}, WON)
    assert not holds("ISCHANGED({!$Record.Amount})", WON, WON)
    assert not holds("PRIORVALUE({!$Record.IsWon})", {**WON, "IsWon": True}, {**WON, "IsWon": False})
    # Blank is no value or empty text.
    assert holds("ISBLANK({!$Record.Intacct_Order_Id__c})", WON)
    assert holds("ISBLANK({!$Record.Intacct_Order_Id__c})", {**WON, "Intacct_Order_Id__c": ""})
    assert not holds("ISBLANK({!$Record.Intacct_Order_Id__c})", {**WON, "Intacct_Order_Id__c": "SO-1"})
    assert holds("{!$Permission.Quiet}", WON, permissions=frozenset({"Quiet"}))
    assert not holds("{!$Permission.Quiet}", WON)


# --- the package's Opportunity flow ---------------------------------------------------------------------


def test_the_opportunity_flow_formula_watches_every_field_the_order_is_made_from() -> None:
    formula = parse_formula(opportunity_formula())

    assert formula.changed_fields == ORDER_FIELDS
    assert formula.fields == ORDER_FIELDS | {"Intacct_Order_Id__c"}
    assert formula.permissions == {INTEGRATION}


@pytest.mark.parametrize(
    ("before", "changes", "permissions", "sends"),
    [
        (None, {}, frozenset(), True),  # created won
        (None, {"IsWon": False}, frozenset(), False),  # created open
        ({**WON, "IsWon": False}, {"IsWon": True}, frozenset(), True),  # becomes won
        (WON, {"Amount": 150.0}, frozenset(), True),  # a product added to a won deal
        (WON, {"AccountId": "001000000000002AAA"}, frozenset(), True),
        (WON, {"CloseDate": "2026-07-01"}, frozenset(), True),
        (WON, {"Pricebook2Id": "01s000000000002AAA"}, frozenset(), True),
        (WON, {"Description": "call back"}, frozenset(), False),  # an unrelated field
        (WON, {"Amount": 150.0}, frozenset({INTEGRATION}), False),  # the integration user
        (None, {}, frozenset({INTEGRATION}), False),
        ({**WON, "Intacct_Order_Id__c": "SO-1"}, {"IsWon": False}, frozenset(), True),  # left won, synced
        (WON, {"IsWon": False}, frozenset(), False),  # left won, never synced
        ({**WON, "IsWon": False, "Intacct_Order_Id__c": "SO-1"}, {"Amount": 1.0}, frozenset(), False),
    ],
)
def test_the_opportunity_flow_formula_sends_on_the_changes_that_matter(
    before: dict[str, Any] | None, changes: dict[str, Any], permissions: frozenset[str], sends: bool
) -> None:
    after = {**(before or WON), **changes}

    assert holds(opportunity_formula(), after, before, permissions) is sends
