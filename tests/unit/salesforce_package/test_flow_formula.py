"""sandbox/salesforce/flow_formula.py reads the subset of formula syntax the package's entry conditions
use, evaluates it the way Salesforce describes ISNEW, ISCHANGED, PRIORVALUE and ISBLANK, and refuses
anything else by name; the package's Opportunity flow is written in that subset and watches every field
a synced order depends on."""

from __future__ import annotations

from typing import Any

import pytest

from sandbox.salesforce.flow_formula import (
    FormulaError,
    merge_text_fields,
    parse_field_formula,
    parse_formula,
    render_merge_text,
)
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


# --- parent fields, formula fields and merge text --------------------------------------------------------

ACCOUNT_IN_COLLECTIONS = {"Intacct_In_Collections__c": True, "Intacct_Days_Past_Due__c": 130.0}
WARNING = (
    'IF(Account.Intacct_In_Collections__c, "In collections: " & TEXT(Account.Intacct_Days_Past_Due__c) '
    '& " days past due in Sage Intacct", "")'
)


def parents(**records: dict[str, Any]) -> Any:
    """The records lookup paths point to, e.g. parents(Account={...})."""
    return records.get


def test_an_entry_formula_reads_fields_of_the_records_the_record_looks_up() -> None:
    formula = parse_formula("AND(ISNEW(), {!$Record.Account.Intacct_In_Collections__c})")

    assert formula.fields == {"Account.Intacct_In_Collections__c"}
    assert formula.relationships == {"Account"}
    assert formula.evaluate(
        WON, None, is_new=True, permissions=frozenset(), related=parents(Account=ACCOUNT_IN_COLLECTIONS)
    )
    assert not formula.evaluate(WON, None, is_new=True, permissions=frozenset(), related=parents())
    assert not formula.evaluate(WON, None, is_new=True, permissions=frozenset())  # no lookups given


def test_a_text_formula_field_joins_text_and_numbers() -> None:
    formula = parse_field_formula(WARNING)

    assert formula.fields == {"Account.Intacct_In_Collections__c", "Account.Intacct_Days_Past_Due__c"}
    assert formula.value({}, related=parents(Account=ACCOUNT_IN_COLLECTIONS)) == (
        "In collections: 130 days past due in Sage Intacct"
    )
    not_in_collections = {"Intacct_In_Collections__c": False, "Intacct_Days_Past_Due__c": 20.0}
    assert formula.value({}, related=parents(Account=not_in_collections)) is None  # empty text is null
    assert formula.value({}, related=parents()) is None  # no Account
    blank_days = {"Intacct_In_Collections__c": True, "Intacct_Days_Past_Due__c": None}
    assert formula.value({}, related=parents(Account=blank_days), blanks_as_zero=True) == (
        "In collections: 0 days past due in Sage Intacct"
    )
    assert formula.value({}, related=parents(Account=blank_days)) == (
        "In collections:  days past due in Sage Intacct"
    )
    assert parse_field_formula('TEXT(Amount) & " due"').value({"Amount": 12.50}) == "12.5 due"


def test_a_field_formula_checks_its_fields_against_the_object() -> None:
    types = {
        "Account.Intacct_In_Collections__c": "boolean",
        "Account.Intacct_Days_Past_Due__c": "double",
        "Name": "string",
    }
    parse_field_formula(WARNING).check_fields(types.get)
    parse_field_formula("Name").check_fields(types.get)  # a text field's value, no condition

    with pytest.raises(FormulaError, match="TEXT\\(\\) is read for number fields only, not Name"):
        parse_field_formula('TEXT(Name) & "!"').check_fields(types.get)
    with pytest.raises(FormulaError, match="Name} is used as a condition"):
        parse_field_formula('IF(Name, "a", "b")').check_fields(types.get)
    with pytest.raises(FormulaError, match="a field the object does not have"):
        parse_field_formula('IF(Account.Nope__c, "a", "")').check_fields(types.get)


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("{!$Record.Name} & {!$Record.Name}", "the & operator at 16 is read in formula fields only"),
        ("ISCHANGED({!$Record.Account.Name})", "ISCHANGED() takes one field"),
        ("IF(ISNEW(), TRUE, FALSE)", "the function IF() is not read"),
    ],
)
def test_an_entry_formula_refuses_what_only_formula_fields_read(text: str, complaint: str) -> None:
    with pytest.raises(FormulaError) as caught:
        parse_formula(text)

    assert complaint in str(caught.value)


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("ISNEW()", "the function ISNEW() in a formula field is not read"),
        ("{!$Record.Name}", "the merge field {!$Record.Name} is not read in a formula field"),
        ("'single'", "the text literal 'single' is not read (double quotes only)"),
        ('IF(TRUE, "a")', "IF() takes a condition and two values"),
        ('TEXT("a")', "TEXT() takes one field"),
        ('"a" & TRUE', "& joins text"),
        ("Amount > 2", "unsupported formula syntax"),
        ("1", "the number literal 1 is not read"),
    ],
)
def test_a_formula_field_refuses_what_it_does_not_read_by_name(text: str, complaint: str) -> None:
    with pytest.raises(FormulaError) as caught:
        parse_field_formula(text)

    assert complaint in str(caught.value)


def test_merge_text_fills_in_fields_of_the_record_and_its_parents() -> None:
    text = (
        "Account {!$Record.Account.Name}: {!$Record.Account.Intacct_Days_Past_Due__c} days ({!$Record.Nope})"
    )

    assert merge_text_fields(text) == ("Account.Name", "Account.Intacct_Days_Past_Due__c", "Nope")
    rendered = render_merge_text(
        text, {}, related=parents(Account={"Name": "Acme", "Intacct_Days_Past_Due__c": 130.0})
    )
    assert rendered == "Account Acme: 130 days ()"
    with pytest.raises(FormulaError, match="only"):
        merge_text_fields("{!$Permission.Quiet}")
