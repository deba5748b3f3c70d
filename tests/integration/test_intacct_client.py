"""The Intacct client against the Intacct sandbox over HTTPS: sessions, writes, reads, faults, idempotency."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from typing import Any, Literal

import pytest

from sfintacct.intacct import (
    SESSIONS,
    AlreadyApplied,
    Contact,
    CustomerUpdate,
    DuplicateRecord,
    FunctionFailed,
    IntacctClient,
    IntacctSettings,
    MailAddress,
    NewCustomer,
    OutcomeUnknown,
    SalesTransaction,
    SalesTransactionLine,
    SessionCache,
    create,
    new_customer_element,
    sotransaction_element,
    write_function,
)
from sfintacct.intacct.client import SALES_DOCUMENT_LOOKUP_FIELDS, OrderRetirement
from tests.integration.conftest import IntacctSandboxHandle

pytestmark = pytest.mark.integration


def client_settings(sandbox: IntacctSandboxHandle, **overrides: Any) -> IntacctSettings:
    credentials = sandbox.credentials
    values: dict[str, Any] = {
        "endpoint_url": sandbox.gateway_url,
        "sender_id": credentials.sender_id,
        "sender_password": credentials.sender_password,
        "company_id": credentials.company_id,
        "user_id": credentials.user_id,
        "user_password": credentials.user_password,
        "ca_file": str(sandbox.ca_file),
        "timeout_seconds": 5,
        "retry_budget_seconds": 5,
        "retry_base_delay_seconds": 0.02,
        "retry_max_delay_seconds": 0.2,
    }
    values.update(overrides)
    return IntacctSettings.model_validate(values)


@pytest.fixture
def sessions() -> SessionCache:
    """A session cache of the test's own, so every test starts signed out."""
    return SessionCache()


@pytest.fixture
def client(intacct: IntacctSandboxHandle, sessions: SessionCache) -> Iterator[IntacctClient]:
    with IntacctClient(client_settings(intacct), sessions=sessions) as intacct_client:
        yield intacct_client


def functions_counted(sandbox: IntacctSandboxHandle) -> dict[str, int]:
    counts: dict[str, int] = sandbox.admin.counts()["functions"]
    return counts


def statuses_counted(sandbox: IntacctSandboxHandle) -> dict[str, int]:
    counts: dict[str, int] = sandbox.admin.counts()["statuses"]
    return counts


def new_customer(
    name: str = "Acme Robotics", salesforce_id: str = "001000000000001AAA", **extra: Any
) -> NewCustomer:
    return NewCustomer(
        name=name,
        contact=Contact(
            first_name="Ada",
            last_name="Lovelace",
            email1="ada@acme.test",
            phone1="+1 555 0100",
            mail_address=MailAddress(address1="1 Main St", city="Springfield", state="IL", zip="62701"),
        ),
        term_name="N30",
        custom_fields={"SALESFORCE_ID": salesforce_id},
        **extra,
    )


def sales_order(
    customer_id: str, opportunity_id: str = "006000000000001AAA", **extra: Any
) -> SalesTransaction:
    values: dict[str, Any] = {
        "date_created": date(2026, 11, 28),
        "customer_id": customer_id,
        "reference_no": opportunity_id,
        "external_id": opportunity_id,
        "term_name": "N30",
        "currency": "USD",
        "base_currency": "USD",
        "message": "Closed won in Salesforce",
        "custom_fields": {"SALESFORCE_OPPORTUNITY_ID": opportunity_id},
        "lines": [
            SalesTransactionLine(
                item_id="SUB-PLATFORM", quantity=Decimal(1), price=Decimal("12000"), location_id="US"
            ),
            SalesTransactionLine(
                item_id="SVC-ONBOARD",
                quantity=Decimal(2),
                price=Decimal("2500"),
                discount_percent=Decimal(10),
                department_id="SERVICES",
                memo="Two onboarding days",
            ),
            SalesTransactionLine(
                item_id="SVC-TRAINING",
                quantity=Decimal(1),
                price=Decimal(0),
                memo="Free training add-on",
                revrec_start_date=date(2026, 12, 1),
                revrec_end_date=date(2027, 11, 30),
            ),
        ],
    }
    values.update(extra)
    return SalesTransaction.model_validate(values)


# ---------------------------------------------------------------------------- sessions


def test_login_opens_a_session_and_switches_to_its_endpoint(
    intacct: IntacctSandboxHandle, client: IntacctClient, sessions: SessionCache
) -> None:
    items = client.get_items(["SUB-PLATFORM"])
    client.get_items(["SVC-ONBOARD"])
    assert items["SUB-PLATFORM"].name == "Platform subscription (annual)"
    session = sessions.get(client.settings.session_key, client.gateway.now())
    assert session is not None
    assert session.endpoint == intacct.session_url != intacct.gateway_url
    assert functions_counted(intacct) == {"getAPISession": 1, "query:ITEM": 2}


def test_warm_invocations_reuse_the_module_level_session(intacct: IntacctSandboxHandle) -> None:
    SESSIONS.clear()
    for _ in range(3):  # a new client per invocation, as a Lambda handler creates one
        with IntacctClient(client_settings(intacct)) as client:
            client.get_items(["HW-GATEWAY"])
    assert functions_counted(intacct) == {"getAPISession": 1, "query:ITEM": 3}
    SESSIONS.clear()


def test_expired_session_signs_in_again_once(intacct: IntacctSandboxHandle, client: IntacctClient) -> None:
    client.get_items(["SUB-PLATFORM"])
    intacct.admin.expire_sessions()
    ref = client.create_customer(new_customer(), control_id="cust-after-expiry")
    assert ref.customer_id == "C-00001"
    # The refused attempt is not counted as a function (it never got past sign-in), only as a request.
    assert functions_counted(intacct) == {"getAPISession": 2, "query:ITEM": 1, "create:CUSTOMER": 1}
    assert intacct.admin.counts()["requests"] == 5
    assert len(intacct.admin.records("CUSTOMER")) == 1


def test_short_sessions_are_renewed_before_they_time_out(
    intacct: IntacctSandboxHandle, client: IntacctClient
) -> None:
    intacct.admin.configure(session_seconds=1)
    client.get_items(["SUB-PLATFORM"])
    time.sleep(1.0)
    client.get_items(["SUB-PLATFORM"])
    counted = functions_counted(intacct)
    assert counted["getAPISession"] == 2
    assert statuses_counted(intacct) == {"200": 4}  # no refused call: renewed before use


# ---------------------------------------------------------------------------- customers


def test_create_customer_with_auto_and_given_ids(
    intacct: IntacctSandboxHandle, client: IntacctClient
) -> None:
    auto = client.create_customer(new_customer(), control_id="cust-001A-v1")
    given = client.create_customer(
        new_customer("Beta GmbH", "001000000000002AAA", customer_id="SF-BETA"), control_id="cust-002A-v1"
    )
    assert auto.customer_id == "C-00001"
    assert given.customer_id == "SF-BETA"
    stored = {record["CUSTOMERID"]: record for record in intacct.admin.records("CUSTOMER")}
    assert stored["C-00001"]["NAME"] == "Acme Robotics"
    assert stored["C-00001"]["DISPLAYCONTACT"]["PRINTAS"] == "Acme Robotics"
    assert stored["C-00001"]["DISPLAYCONTACT"]["EMAIL1"] == "ada@acme.test"
    assert stored["C-00001"]["DISPLAYCONTACT"]["MAILADDRESS"]["CITY"] == "Springfield"
    assert stored["C-00001"]["SALESFORCE_ID"] == "001000000000001AAA"
    assert stored["SF-BETA"]["TERMNAME"] == "N30"


def test_duplicate_customer_id_is_a_duplicate_record(
    intacct: IntacctSandboxHandle, client: IntacctClient
) -> None:
    client.create_customer(new_customer(customer_id="SF-ACME"), control_id="cust-dup-1")
    with pytest.raises(DuplicateRecord) as raised:
        client.create_customer(new_customer(customer_id="SF-ACME"), control_id="cust-dup-2")
    assert raised.value.errorno == "BL34000061"
    assert raised.value.correction == "Use a unique value instead."
    assert len(intacct.admin.records("CUSTOMER")) == 1


def test_update_customer(intacct: IntacctSandboxHandle, client: IntacctClient) -> None:
    ref = client.create_customer(new_customer(), control_id="cust-upd-1")
    updated = client.update_customer(
        CustomerUpdate(
            customer_id=ref.customer_id, name="Acme Robotics Ltd", contact=Contact(email1="ap@acme.test")
        ),
        control_id="cust-upd-2",
    )
    assert updated == ref
    [stored] = intacct.admin.records("CUSTOMER")
    assert stored["NAME"] == "Acme Robotics Ltd"
    assert stored["DISPLAYCONTACT"]["EMAIL1"] == "ap@acme.test"
    assert stored["DISPLAYCONTACT"]["FIRSTNAME"] == "Ada"


def test_lookup_by_id_and_by_custom_field(client: IntacctClient) -> None:
    ref = client.create_customer(new_customer("O'Brien & Sons", "001000000000003AAA"), control_id="cust-ob-1")
    client.create_customer(new_customer("Other", "001000000000004AAA"), control_id="cust-ob-2")
    [found] = client.find_customers("SALESFORCE_ID", "001000000000003AAA")
    assert (found.customer_id, found.name) == (ref.customer_id, "O'Brien & Sons")
    [by_name] = client.find_customers("NAME", "O'Brien & Sons")
    assert by_name.customer_id == ref.customer_id
    customer = client.get_customer(ref.customer_id, extra_fields=["SALESFORCE_ID"])
    assert customer is not None
    assert customer.fields["SALESFORCE_ID"] == "001000000000003AAA"
    assert client.get_customer("C-99999") is None
    assert client.find_customers("SALESFORCE_ID", "001000000000009ZZZ") == []


def test_unknown_field_on_create_is_a_permanent_failure(
    intacct: IntacctSandboxHandle, client: IntacctClient
) -> None:
    customer = NewCustomer(name="Acme", custom_fields={"NOT_A_FIELD": "x"})
    with pytest.raises(FunctionFailed, match="NOT_A_FIELD"):
        client.create_customer(customer, control_id="cust-bad-field")
    assert intacct.admin.records("CUSTOMER") == []


# ---------------------------------------------------------------------------- items


def test_items_are_looked_up_several_at_once(intacct: IntacctSandboxHandle, client: IntacctClient) -> None:
    items = client.get_items(["SUB-PLATFORM", "SVC-TRAINING", "OLD-LEGACY", "NO-SUCH-ITEM"])
    assert set(items) == {"SUB-PLATFORM", "SVC-TRAINING", "OLD-LEGACY"}
    assert items["SVC-TRAINING"].base_price == Decimal(800)
    assert items["SVC-TRAINING"].unit == "Each"
    assert items["SUB-PLATFORM"].active
    assert not items["OLD-LEGACY"].active
    assert functions_counted(intacct)["query:ITEM"] == 1


# ---------------------------------------------------------------------------- sales orders


def test_sales_order_with_three_lines_is_created_and_read_back(
    intacct: IntacctSandboxHandle, client: IntacctClient
) -> None:
    customer = client.create_customer(new_customer(), control_id="cust-so-1")
    doc_id = client.create_sotransaction(sales_order(customer.customer_id), control_id="so-006A-v1")
    assert doc_id == "Sales Order-SO0001"

    # TERMNAME and EXTERNALID are not in the default select (no source shows them on SODOCUMENT).
    [header] = client.find_sales_documents(
        reference_no="006000000000001AAA",
        extra_fields=["SALESFORCE_OPPORTUNITY_ID", "TERMNAME", "EXTERNALID"],
    )
    assert header.doc_id == doc_id
    assert header.transaction_type == "Sales Order"
    assert header.customer_id == customer.customer_id
    assert header.external_id == "006000000000001AAA"
    assert header.date_created == date(2026, 11, 28)
    assert header.date_due == date(2026, 12, 28)
    assert header.term_name == "N30"
    assert header.state == "Pending"
    assert header.message == "Closed won in Salesforce"
    assert header.total == Decimal("16500.00")
    assert header.fields["SALESFORCE_OPPORTUNITY_ID"] == "006000000000001AAA"
    assert client.find_sales_documents(external_id="006000000000001AAA")[0].doc_id == doc_id
    # The sync's look-up selects only the fields whose names the evidence confirms.
    [found] = client.find_sales_documents(
        reference_no="006000000000001AAA", fields=SALES_DOCUMENT_LOOKUP_FIELDS
    )
    assert (found.doc_id, found.customer_id, found.reference_no) == (
        doc_id,
        customer.customer_id,
        header.reference_no,
    )
    assert set(found.fields) == set(SALES_DOCUMENT_LOOKUP_FIELDS)

    # Nor are these line fields, whose names no source confirms.
    unconfirmed = ["DISCOUNT", "DEPARTMENTID", "LOCATIONID", "REVRECSTARTDATE", "REVRECENDDATE"]
    lines = client.get_sales_document_lines(doc_id, extra_fields=unconfirmed)
    assert [(line.line_no, line.item_id) for line in lines] == [
        (0, "SUB-PLATFORM"),
        (1, "SVC-ONBOARD"),
        (2, "SVC-TRAINING"),
    ]
    assert [line.total for line in lines] == [Decimal("12000.00"), Decimal("4500.00"), Decimal("0.00")]
    assert lines[1].discount_percent == Decimal(10)
    assert lines[1].department_id == "SERVICES"
    assert lines[0].location_id == "US"
    assert lines[2].price == Decimal(0)
    assert lines[2].memo == "Free training add-on"
    assert (lines[2].revrec_start_date, lines[2].revrec_end_date) == (date(2026, 12, 1), date(2027, 11, 30))


def test_invalid_item_is_a_permanent_failure_that_creates_nothing(
    intacct: IntacctSandboxHandle, client: IntacctClient
) -> None:
    customer = client.create_customer(new_customer(), control_id="cust-bad-item")
    order = sales_order(
        customer.customer_id, lines=[SalesTransactionLine(item_id="NO-SUCH-ITEM", quantity=Decimal(1))]
    )
    with pytest.raises(FunctionFailed, match="NO-SUCH-ITEM") as raised:
        client.create_sotransaction(order, control_id="so-bad-item")
    assert raised.value.transient is False
    assert intacct.admin.records("SODOCUMENT") == []
    assert statuses_counted(intacct) == {"200": 3}  # session, customer, order: no retries


def test_transaction_rolls_back_everything_and_the_same_control_ids_can_be_sent_again(
    intacct: IntacctSandboxHandle, client: IntacctClient
) -> None:
    customer = new_customer(customer_id="SF-TX")
    bad_order = sales_order("SF-TX", term_name="N45")
    batch = [
        create([new_customer_element(customer)], control_id="tx-customer"),
        write_function(sotransaction_element(bad_order), "tx-order"),
    ]
    with pytest.raises(FunctionFailed, match="N45") as raised:
        client.execute_checked(batch, transaction=True)
    assert raised.value.control_id == "tx-order"
    assert intacct.admin.records("CUSTOMER") == []
    assert intacct.admin.records("SODOCUMENT") == []

    fixed = [batch[0], write_function(sotransaction_element(sales_order("SF-TX")), "tx-order")]
    results = client.execute_checked(fixed, transaction=True)
    assert [result.control_id for result in results] == ["tx-customer", "tx-order"]
    assert results[1].key == "Sales Order-SO0001"
    assert len(intacct.admin.records("CUSTOMER")) == 1
    assert len(intacct.admin.records("SODOCUMENT")) == 1


# ---------------------------------------------------------------------------- paging


def test_query_and_read_by_query_page_through_every_record(
    intacct: IntacctSandboxHandle, client: IntacctClient
) -> None:
    for number in range(5):
        client.create_customer(
            new_customer(f"Customer {number}", f"001{number:015d}"), control_id=f"cust-page-{number}"
        )
    by_query = list(
        client.query("CUSTOMER", ["CUSTOMERID", "NAME"], order_by=[("CUSTOMERID", False)], page_size=2)
    )
    assert [record["CUSTOMERID"] for record in by_query] == [f"C-0000{n}" for n in range(1, 6)]
    by_read = list(client.read_by_query("CUSTOMER", fields=["CUSTOMERID"], page_size=2))
    assert sorted(record["CUSTOMERID"] for record in by_read) == [f"C-0000{n}" for n in range(1, 6)]
    counted = functions_counted(intacct)
    assert counted["query:CUSTOMER"] == 3
    assert counted["readByQuery:CUSTOMER"] == 1
    assert counted["readMore:CUSTOMER"] == 2


# ---------------------------------------------------------------------------- transient faults


def test_rate_limit_and_server_errors_are_retried(
    intacct: IntacctSandboxHandle, client: IntacctClient
) -> None:
    client.get_items(["SUB-PLATFORM"])  # sign in first so the faults hit the write
    intacct.admin.set_faults(rate_limit_next=1)
    ref = client.create_customer(new_customer(), control_id="cust-429")
    intacct.admin.set_faults(fail_next={"count": 2, "status": 502})
    order = client.create_sotransaction(sales_order(ref.customer_id), control_id="so-5xx")
    assert order == "Sales Order-SO0001"
    statuses = statuses_counted(intacct)
    assert (statuses["429"], statuses["502"]) == (1, 2)
    assert len(intacct.admin.records("CUSTOMER")) == 1
    assert len(intacct.admin.records("SODOCUMENT")) == 1


def test_offline_for_a_while_is_retried_inside_the_budget(
    intacct: IntacctSandboxHandle, sessions: SessionCache
) -> None:
    settings = client_settings(intacct, retry_budget_seconds=10, max_attempts=20, retry_max_delay_seconds=0.3)
    with IntacctClient(settings, sessions=sessions) as client:
        client.get_items(["SUB-PLATFORM"])
        intacct.admin.set_faults(offline=True)
        back_online = threading.Timer(0.8, lambda: intacct.admin.set_faults(offline=False))
        back_online.start()
        try:
            ref = client.create_customer(new_customer(), control_id="cust-offline")
        finally:
            back_online.join()
    assert ref.customer_id == "C-00001"
    assert statuses_counted(intacct)["503"] >= 2


def test_dropped_connection_on_a_read_is_retried(
    intacct: IntacctSandboxHandle, client: IntacctClient
) -> None:
    client.get_items(["SUB-PLATFORM"])
    intacct.admin.set_faults(drop_connection_next={"count": 1, "function": None})
    assert "HW-GATEWAY" in client.get_items(["HW-GATEWAY"])
    assert functions_counted(intacct)["query:ITEM"] == 3


# ---------------------------------------------------------------------------- outcome unknown and idempotency


def test_524_after_commit_is_outcome_unknown_and_the_resend_is_already_applied(
    intacct: IntacctSandboxHandle, client: IntacctClient
) -> None:
    customer = client.create_customer(new_customer(), control_id="cust-524")
    order = sales_order(customer.customer_id, opportunity_id="006000000000524AAA")
    intacct.admin.set_faults(timeout_after_commit_next={"count": 1, "function": "create_sotransaction"})

    with pytest.raises(OutcomeUnknown) as unknown:
        client.create_sotransaction(order, control_id="so-006524-v1")
    assert unknown.value.control_ids == ("so-006524-v1",)
    assert functions_counted(intacct)["create_sotransaction"] == 1  # never resent blindly

    with pytest.raises(AlreadyApplied) as applied:
        client.create_sotransaction(order, control_id="so-006524-v1")
    assert applied.value.control_id == "so-006524-v1"

    assert len(intacct.admin.records("SODOCUMENT")) == 1
    [found] = client.find_sales_documents(reference_no="006000000000524AAA")
    assert found.doc_id == "Sales Order-SO0001"
    assert len(client.get_sales_document_lines(found.doc_id)) == 3


@pytest.mark.parametrize(
    ("answer", "kind"),
    [
        ("already_recorded", AlreadyApplied),
        ("other_wording", AlreadyApplied),
        ("generic_failure", FunctionFailed),
    ],
)
def test_a_repeated_control_id_is_refused_in_the_sandboxs_configured_words_and_nothing_is_applied(
    intacct: IntacctSandboxHandle, client: IntacctClient, answer: str, kind: type[Exception]
) -> None:
    """The errorno and words are not documented: a refusal that quotes the control id is AlreadyApplied,
    one with nothing recognisable a plain FunctionFailed (the sync looks the order up either way)."""
    intacct.admin.configure(duplicate_controlid_answer=answer)
    customer = client.create_customer(new_customer(), control_id="cust-repeat")
    order = sales_order(customer.customer_id, opportunity_id="006000000000777AAA")
    client.create_sotransaction(order, control_id="so-006777-v1")

    with pytest.raises(kind) as refused:
        client.create_sotransaction(order, control_id="so-006777-v1")

    assert refused.value.transient is False
    assert len(intacct.admin.records("SODOCUMENT")) == 1


def test_dropped_connection_after_a_write_is_outcome_unknown(
    intacct: IntacctSandboxHandle, client: IntacctClient
) -> None:
    client.get_items(["SUB-PLATFORM"])
    intacct.admin.set_faults(drop_connection_next={"count": 1, "function": "create"})
    with pytest.raises(OutcomeUnknown):
        client.create_customer(new_customer(), control_id="cust-drop")
    with pytest.raises(AlreadyApplied):
        client.create_customer(new_customer(), control_id="cust-drop")
    assert len(intacct.admin.records("CUSTOMER")) == 1


def test_timeout_while_intacct_still_works_is_outcome_unknown(
    intacct: IntacctSandboxHandle, sessions: SessionCache
) -> None:
    with IntacctClient(client_settings(intacct, timeout_seconds=0.3), sessions=sessions) as client:
        client.get_items(["SUB-PLATFORM"])
        intacct.admin.set_faults(latency_ms=700)
        with pytest.raises(OutcomeUnknown):
            client.create_customer(new_customer(), control_id="cust-slow")
        intacct.admin.clear_faults()
        deadline = time.monotonic() + 5
        while not intacct.admin.records("CUSTOMER") and time.monotonic() < deadline:
            time.sleep(0.05)
        with pytest.raises(AlreadyApplied):
            client.create_customer(new_customer(), control_id="cust-slow")
    assert len(intacct.admin.records("CUSTOMER")) == 1


# ---------------------------------------------------------------------------- an order that follows its deal


def test_an_open_order_is_updated_in_place_with_its_lines_rewritten_and_one_added(
    intacct: IntacctSandboxHandle, client: IntacctClient
) -> None:
    customer = client.create_customer(new_customer(), control_id="cust-upd-1")
    order = sales_order(customer.customer_id)
    doc_id = client.create_sotransaction(order, control_id="so-upd-1")
    changed = order.model_copy(
        update={
            "message": "Re-closed with more seats",
            "lines": [
                order.lines[0].model_copy(update={"quantity": Decimal(10)}),
                *order.lines[1:],
                SalesTransactionLine(item_id="SVC-TRAINING", quantity=Decimal(3), price=Decimal(100)),
            ],
        }
    )

    client.update_sotransaction(doc_id, changed, existing_lines=3, control_id="so-upd-1-change")

    [header] = client.find_sales_documents(reference_no=order.reference_no)
    assert (header.doc_id, header.state, header.message) == (doc_id, "Pending", "Re-closed with more seats")
    assert header.total == Decimal("124800.00")  # 10 x 12000 + 4500 + 0 + 3 x 100
    lines = client.get_sales_document_lines(doc_id)
    assert [(line.item_id, line.quantity) for line in lines] == [
        ("SUB-PLATFORM", Decimal(10)),
        ("SVC-ONBOARD", Decimal(2)),
        ("SVC-TRAINING", Decimal(1)),
        ("SVC-TRAINING", Decimal(3)),
    ]
    with pytest.raises(AlreadyApplied):  # the same change sent again is refused as a repeat
        client.update_sotransaction(doc_id, changed, existing_lines=3, control_id="so-upd-1-change")


@pytest.mark.parametrize("how", ["close", "delete"])
def test_an_order_is_retired_alone_or_replaced_in_one_transaction(
    intacct: IntacctSandboxHandle, client: IntacctClient, how: Literal["close", "delete"]
) -> None:
    first = client.create_customer(new_customer(), control_id=f"cust-ret-{how}")
    second = client.create_customer(new_customer("Contoso", "001000000000002AAA"), control_id=f"cust2-{how}")
    old = client.create_sotransaction(sales_order(first.customer_id), control_id=f"so-ret-{how}")

    _, new = client.write_customer_and_order(
        None,
        sales_order(second.customer_id),
        customer_control_id="",
        order_control_id=f"so-ret-{how}-new",
        retired=OrderRetirement(old, how, f"so-ret-{how}-retire"),
    )

    documents = {d.doc_id: d for d in client.find_sales_documents(reference_no="006000000000001AAA")}
    assert documents[new].customer_id == second.customer_id
    assert documents[new].is_open
    if how == "close":
        assert documents[old].state_name == "Closed"
    else:
        assert old not in documents
    client.retire_sotransaction(OrderRetirement(new, "close", f"so-ret-{how}-new-close"))
    assert not client.find_sales_documents(doc_id=new)[0].is_open


def test_a_converted_order_can_be_neither_updated_nor_retired(
    intacct: IntacctSandboxHandle, client: IntacctClient
) -> None:
    customer = client.create_customer(new_customer(), control_id="cust-conv")
    order = sales_order(customer.customer_id)
    doc_id = client.create_sotransaction(order, control_id="so-conv")
    intacct.admin.convert_sales_document(doc_id, "Converted")

    with pytest.raises(FunctionFailed, match="cannot be updated"):
        client.update_sotransaction(doc_id, order, existing_lines=3, control_id="so-conv-update")
    with pytest.raises(FunctionFailed, match="cannot be updated"):
        client.retire_sotransaction(OrderRetirement(doc_id, "close", "so-conv-close"))
    with pytest.raises(FunctionFailed, match="cannot be deleted"):
        client.retire_sotransaction(OrderRetirement(doc_id, "delete", "so-conv-delete"))
    [header] = client.find_sales_documents(doc_id=doc_id)
    assert header.state_name == "Converted"
