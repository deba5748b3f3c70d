"""The soak's checks can fail: each kind of damage in the sandboxes' state is reported, nothing else is.

The states are built the way the sandboxes' admin APIs answer (Intacct values as text, Salesforce numbers
as JSON numbers), for two deals: one on an Account synced before, one whose customer came with its order.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from sandbox.soak import (
    CHECK_NAMES,
    COLLISIONS,
    FAULT_KINDS,
    Expectation,
    Findings,
    SandboxState,
    check,
    make_plan,
)

ACCOUNT_A, ACCOUNT_B = "001AAAAAAAAAAAAAAA", "001BBBBBBBBBBBBBBB"
DEAL_1, DEAL_2 = "006111111111111111", "006222222222222222"
ORDER_1, ORDER_2 = "Sales Order-SO0001", "Sales Order-SO0002"


def clean_state() -> dict[str, list[dict[str, Any]]]:
    return {
        "customers": [
            {"RECORDNO": "1", "CUSTOMERID": ACCOUNT_A, "NAME": "Alpha", "SALESFORCE_ID": ACCOUNT_A},
            {"RECORDNO": "2", "CUSTOMERID": ACCOUNT_B, "NAME": "Beta", "SALESFORCE_ID": ACCOUNT_B},
        ],
        "orders": [
            {"DOCID": ORDER_1, "PONUMBER": DEAL_1, "CUSTVENDID": ACCOUNT_A},
            {"DOCID": ORDER_2, "PONUMBER": DEAL_2, "CUSTVENDID": ACCOUNT_B},
        ],
        "order_lines": [
            _entry(ORDER_1, "SUB-PLATFORM", "1", "12000", "10"),
            _entry(ORDER_1, "SVC-ONBOARD", "1", "2500", "0"),
            _entry(ORDER_1, "SVC-TRAINING", "2", "0", ""),  # the free line; Intacct leaves 0 % empty
            _entry(ORDER_2, "SVC-ONBOARD", "3", "1234.56", "12.5"),
        ],
        "opportunities": [
            _opportunity(DEAL_1, ACCOUNT_A, ORDER_1),
            _opportunity(DEAL_2, ACCOUNT_B, ORDER_2),
        ],
        "accounts": [_account(ACCOUNT_A, "Alpha"), _account(ACCOUNT_B, "Beta")],
        "line_items": [
            _item(DEAL_1, "SUB-PLATFORM", 1.0, 12000.0, 10.0),
            _item(DEAL_1, "SVC-ONBOARD", 1.0, 2500.0, None),
            _item(DEAL_1, "SVC-TRAINING", 2.0, 0.0, None),
            _item(DEAL_2, "SVC-ONBOARD", 3.0, 1234.56, 12.5),
        ],
        "dead_letters": [],
    }


def _entry(doc_id: str, item: str, quantity: str, price: str, discount: str) -> dict[str, Any]:
    return {"DOCHDRID": doc_id, "ITEMID": item, "QUANTITY": quantity, "PRICE": price, "DISCOUNT": discount}


def _opportunity(opportunity_id: str, account_id: str, doc_id: str) -> dict[str, Any]:
    return {
        "Id": opportunity_id,
        "AccountId": account_id,
        "StageName": "Closed Won",
        "Intacct_Order_Id__c": doc_id,
        "Intacct_Sync_Status__c": "Synced",
        "Intacct_Sync_Error__c": None,
    }


def _account(account_id: str, name: str) -> dict[str, Any]:
    return {"Id": account_id, "Name": name, "Intacct_Customer_Id__c": account_id}


def _item(
    opportunity_id: str, code: str, quantity: float, price: float, discount: float | None
) -> dict[str, Any]:
    return {
        "OpportunityId": opportunity_id,
        "ProductCode": code,
        "Quantity": quantity,
        "UnitPrice": price,
        "Discount": discount,
        "IsDeleted": False,
    }


EXPECTED = Expectation(opportunities={DEAL_1: ACCOUNT_A, DEAL_2: ACCOUNT_B}, accounts={ACCOUNT_A, ACCOUNT_B})


def run(state: dict[str, list[dict[str, Any]]], expected: Expectation = EXPECTED) -> Findings:
    return check(expected, SandboxState(**state))


def only(findings: Findings, name: str, count: int = 1) -> None:
    counts = findings.counts()
    assert counts[name] == count, findings.problems
    assert sum(counts.values()) == count, findings.problems
    assert not findings.passed


def test_a_clean_state_passes_every_check() -> None:
    findings = run(clean_state())

    assert findings.passed, findings.problems
    assert findings.counts() == dict.fromkeys(CHECK_NAMES, 0)


def test_a_second_order_for_one_opportunity_is_a_duplicate() -> None:
    state = clean_state()
    state["orders"].append({"DOCID": "Sales Order-SO0003", "PONUMBER": DEAL_1, "CUSTVENDID": ACCOUNT_A})
    state["order_lines"] += [
        {**line, "DOCHDRID": "Sales Order-SO0003"}
        for line in state["order_lines"]
        if line["DOCHDRID"] == ORDER_1
    ]

    findings = run(state)

    only(findings, "duplicated")
    assert findings.problems[0].record_id == DEAL_1
    assert "2 Intacct orders" in findings.problems[0].what


def test_a_second_customer_for_one_account_is_a_duplicate() -> None:
    state = clean_state()
    state["customers"].append(
        {"RECORDNO": "3", "CUSTOMERID": "C-0003", "NAME": "Beta", "SALESFORCE_ID": ACCOUNT_B}
    )

    only(run(state), "duplicated")


def test_a_closed_won_deal_without_an_order_is_lost() -> None:
    state = clean_state()
    state["orders"] = [order for order in state["orders"] if order["PONUMBER"] != DEAL_2]

    findings = run(state)

    only(findings, "lost")
    assert findings.problems[0].record_id == DEAL_2
    assert findings.problems[0].held["opportunity"]["Intacct_Sync_Status__c"] == "Synced"


def test_an_account_of_a_deal_without_a_customer_is_lost() -> None:
    state = clean_state()
    state["customers"] = [customer for customer in state["customers"] if customer["RECORDNO"] != "2"]

    findings = run(state)

    assert findings.counts()["lost"] == 1
    assert findings.problems[0].record_id == ACCOUNT_B


def test_a_wrong_price_quantity_item_or_discount_is_a_wrong_line() -> None:
    for field, value in (
        ("PRICE", "1234.50"),
        ("QUANTITY", "4"),
        ("ITEMID", "SVC-TRAINING"),
        ("DISCOUNT", "0"),
    ):
        state = clean_state()
        state["order_lines"][3][field] = value

        findings = run(state)

        only(findings, "wrong")
        assert findings.problems[0].record_id == DEAL_2
        assert findings.problems[0].held["salesforce"] != findings.problems[0].held["intacct"]


def test_a_missing_or_extra_line_and_a_free_line_that_is_not_free_are_wrong() -> None:
    missing = clean_state()
    del missing["order_lines"][2]
    extra = clean_state()
    extra["order_lines"].append(_entry(ORDER_2, "SVC-TRAINING", "1", "800", "0"))
    not_free = clean_state()
    not_free["order_lines"][2]["PRICE"] = "800"

    for state in (missing, extra, not_free):
        only(run(state), "wrong")


def test_an_order_on_another_customer_is_wrong() -> None:
    state = clean_state()
    state["orders"][1]["CUSTVENDID"] = ACCOUNT_A

    only(run(state), "wrong")


def test_a_missing_or_wrong_opportunity_write_back_is_reported() -> None:
    for field, value in (
        ("Intacct_Order_Id__c", None),
        ("Intacct_Order_Id__c", ORDER_2),
        ("Intacct_Sync_Status__c", "Failed"),
        ("Intacct_Sync_Status__c", None),
    ):
        state = clean_state()
        state["opportunities"][0][field] = value

        findings = run(state)

        only(findings, "missing_write_backs")
        assert findings.problems[0].record_id == DEAL_1


def test_a_missing_account_write_back_is_reported() -> None:
    state = clean_state()
    state["accounts"][1]["Intacct_Customer_Id__c"] = None

    findings = run(state)

    only(findings, "missing_write_backs")
    assert findings.problems[0].record_id == ACCOUNT_B


def test_a_customer_with_an_older_name_is_stale() -> None:
    state = clean_state()
    state["accounts"][0]["Name"] = "Alpha Renamed"

    only(run(state), "stale_customers")


def test_an_order_or_customer_of_no_deal_is_stray() -> None:
    state = clean_state()
    state["orders"].append({"DOCID": "Sales Order-SO0009", "PONUMBER": "", "CUSTVENDID": ACCOUNT_A})
    state["customers"].append(
        {"RECORDNO": "9", "CUSTOMERID": "C-0009", "NAME": "Nobody", "SALESFORCE_ID": ""}
    )

    only(run(state), "stray", 2)


def test_a_dead_letter_is_unexplained_unless_the_soak_caused_it() -> None:
    state = clean_state()
    state["dead_letters"] = [
        {"function": "OpportunityToOrderFunction", "message_id": "m-1", "record_id": DEAL_1, "body": "{}"},
        {"function": "OpportunityToOrderFunction", "message_id": "m-2", "record_id": DEAL_2, "body": "{}"},
    ]
    explained = Expectation(
        opportunities=EXPECTED.opportunities,
        accounts=EXPECTED.accounts,
        explained_dead_letters={DEAL_2: "an unknown item, on purpose"},
    )

    findings = run(state, explained)

    only(findings, "unexplained_dead_letters")
    assert findings.problems[0].record_id == DEAL_1
    assert findings.explained_dead_letters == 1


def test_records_from_before_the_soak_are_left_out() -> None:
    state = clean_state()
    state["orders"].append({"DOCID": "Sales Order-SO0000", "PONUMBER": "006OTHER", "CUSTVENDID": "C-OLD"})
    state["customers"].append(
        {"RECORDNO": "0", "CUSTOMERID": "C-OLD", "NAME": "Old", "SALESFORCE_ID": "001OLD"}
    )
    state["dead_letters"] = [
        {"function": "CustomerUpsertFunction", "message_id": "old", "record_id": "001OLD"}
    ]
    earlier = Expectation(
        opportunities=EXPECTED.opportunities,
        accounts=EXPECTED.accounts,
        earlier_customers={"0"},
        earlier_orders={"Sales Order-SO0000"},
        earlier_dead_letters={"old"},
    )

    assert run(state, earlier).passed
    assert run(state).counts()["stray"] == 2
    assert run(state).counts()["unexplained_dead_letters"] == 1


def test_every_problem_at_once_is_counted_once_each() -> None:
    state = copy.deepcopy(clean_state())
    state["orders"] = [state["orders"][0], state["orders"][0]]  # deal 1 twice, deal 2 lost
    state["order_lines"][0]["PRICE"] = "11999"
    state["accounts"][0]["Intacct_Customer_Id__c"] = ""
    state["dead_letters"] = [
        {"function": "CustomerUpsertFunction", "message_id": "m", "record_id": ACCOUNT_A}
    ]

    counts = run(state).counts()

    assert counts["duplicated"] == 1
    assert counts["lost"] == 1
    assert counts["wrong"] == 1
    assert counts["missing_write_backs"] == 1
    assert counts["unexplained_dead_letters"] == 1


# ---------------------------------------------------------------------------- the plan


def test_the_plan_is_the_same_for_a_seed_and_differs_between_seeds() -> None:
    assert make_plan(40, seed=3) == make_plan(40, seed=3)
    assert make_plan(40, seed=3) != make_plan(40, seed=4)


@pytest.mark.parametrize("seed", range(20))
def test_a_small_plan_has_every_kind_of_chaos(seed: int) -> None:
    plan = make_plan(8, seed)

    deals = plan.deals
    assert deals[0].notice == "outbound"
    assert {deal.account_kind for deal in deals} == {"synced", "new", "racing"}
    assert any(deal.notice in COLLISIONS for deal in deals)
    assert any(deal.notice == "collision_event" for deal in deals)
    assert any(deal.duplicates for deal in deals)
    assert any(deal.edit for deal in deals)
    assert any(deal.kill is not None for deal in deals)
    assert {fault.kind for deal in deals for fault in deal.faults} >= {
        "intacct_524_after_commit",
        "salesforce_5xx",
    }
    assert {fault.kind for deal in deals for fault in deal.faults} <= set(FAULT_KINDS)
    assert not any(deal.kill for deal in make_plan(8, seed, kills=False).deals)


def test_a_large_plan_draws_every_fault_and_free_lines() -> None:
    plan = make_plan(300, seed=1)

    assert {fault.kind for deal in plan.deals for fault in deal.faults} == set(FAULT_KINDS)
    assert any(line.unit_price == 0 for deal in plan.deals for line in deal.lines)
    assert plan.new_accounts >= 1
    assert plan.synced_accounts == 20
