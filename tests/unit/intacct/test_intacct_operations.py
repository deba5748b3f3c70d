"""Client operations over a scripted gateway: what they send and what they return, paging included."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal

import httpx
import pytest
from intacct_fakes import (
    FakeClock,
    FakeIntacct,
    SeenRequest,
    envelope,
    fixture_reply,
    make_client,
    ok,
    result_xml,
    session_reply,
    xml_reply,
)

from sfintacct.intacct import (
    DuplicateRecord,
    IntacctProtocolError,
    IntacctRequestError,
    NewCustomer,
    SalesTransaction,
    SalesTransactionLine,
)
from sfintacct.intacct.client import SALES_DOCUMENT_LOOKUP_FIELDS


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def page(object_tag: str, rows: list[dict[str, str]], *, remaining: int, **attributes: str) -> str:
    """A `<data>` element with records."""
    extra = "".join(f' {name}="{value}"' for name, value in attributes.items())
    records = "".join(
        f"<{object_tag}>" + "".join(f"<{k}>{v}</{k}>" for k, v in row.items()) + f"</{object_tag}>"
        for row in rows
    )
    return f'<data count="{len(rows)}" numremaining="{remaining}"{extra}>{records}</data>'


def page_reply(data: str) -> Callable[[SeenRequest], httpx.Response]:
    def reply(seen: SeenRequest) -> httpx.Response:
        [name], [control_id] = seen.function_names, seen.control_ids
        return xml_reply(envelope(result_xml("success", name, control_id, data)))

    return reply


def test_create_customer_returns_the_record_number_and_id(clock: FakeClock) -> None:
    fake = FakeIntacct([session_reply(), fixture_reply("create_customer_success.xml")])
    with make_client(fake, clock) as client:
        ref = client.create_customer(NewCustomer(name="Acme"), control_id="cust-001Ab-v1")
    assert (ref.record_no, ref.customer_id) == ("8346", "C-00042")
    assert fake.requests[1].function_names == ["create"]


def test_duplicate_customer_id_raises_duplicate_record(clock: FakeClock) -> None:
    fake = FakeIntacct([session_reply(), fixture_reply("duplicate_customer.xml")])
    with make_client(fake, clock) as client, pytest.raises(DuplicateRecord, match="C-00042 already exists"):
        client.create_customer(NewCustomer(customer_id="C-00042", name="Acme"), control_id="cust-001Ab-v1")


def test_create_sotransaction_returns_the_docid_key(clock: FakeClock) -> None:
    fake = FakeIntacct([session_reply(), fixture_reply("create_sotransaction_success.xml")])
    order = SalesTransaction(
        date_created=date(2026, 11, 28),
        customer_id="C-00042",
        term_name="N30",
        lines=[SalesTransactionLine(item_id="SUB-PLATFORM", quantity=Decimal(1))],
    )
    with make_client(fake, clock) as client:
        assert client.create_sotransaction(order, control_id="so-006Ab-v1") == "Sales Order-SO0007"
    assert fake.requests[1].unique_id == "true"


def test_query_pages_by_offset_until_nothing_remains(clock: FakeClock) -> None:
    fake = FakeIntacct(
        [
            session_reply(),
            page_reply(page("CUSTOMER", [{"CUSTOMERID": "C-1"}, {"CUSTOMERID": "C-2"}], remaining=3)),
            page_reply(page("CUSTOMER", [{"CUSTOMERID": "C-3"}, {"CUSTOMERID": "C-4"}], remaining=1)),
            page_reply(page("CUSTOMER", [{"CUSTOMERID": "C-5"}], remaining=0)),
        ]
    )
    with make_client(fake, clock) as client:
        records = list(client.query("CUSTOMER", ["CUSTOMERID"], page_size=2))
    assert [record["CUSTOMERID"] for record in records] == ["C-1", "C-2", "C-3", "C-4", "C-5"]
    offsets = [seen.root.findtext(".//query/offset") for seen in fake.requests[1:]]
    assert offsets == ["0", "2", "4"]
    assert all(seen.unique_id == "false" for seen in fake.requests)


def test_read_by_query_follows_read_more_with_the_result_id(clock: FakeClock) -> None:
    fake = FakeIntacct(
        [
            session_reply(),
            page_reply(page("item", [{"ITEMID": "A"}, {"ITEMID": "B"}], remaining=1, resultId="rid-1")),
            page_reply(page("item", [{"ITEMID": "C"}], remaining=0, resultId="")),
        ]
    )
    with make_client(fake, clock) as client:
        records = list(client.read_by_query("ITEM", page_size=2))
    assert [record["ITEMID"] for record in records] == ["A", "B", "C"]
    assert fake.requests[2].function_names == ["readMore"]
    assert fake.requests[2].root.findtext(".//readMore/resultId") == "rid-1"


def test_read_by_query_without_a_result_id_for_remaining_rows_is_a_protocol_error(clock: FakeClock) -> None:
    fake = FakeIntacct([session_reply(), page_reply(page("item", [{"ITEMID": "A"}], remaining=5))])
    with make_client(fake, clock) as client, pytest.raises(IntacctProtocolError):
        list(client.read_by_query("ITEM"))


def test_get_items_asks_for_many_ids_at_once_in_chunks(clock: FakeClock) -> None:
    wanted = [f"ITEM-{number:03d}" for number in range(150)]
    fake = FakeIntacct(
        [
            session_reply(),
            page_reply(
                page(
                    "ITEM",
                    [{"ITEMID": "ITEM-000", "STATUS": "active", "BASEPRICE": "12.50", "UOM": "Each"}],
                    remaining=0,
                )
            ),
            page_reply(
                page("ITEM", [{"ITEMID": "ITEM-149", "STATUS": "inactive", "BASEPRICE": ""}], remaining=0)
            ),
        ]
    )
    with make_client(fake, clock) as client:
        items = client.get_items([*wanted, "ITEM-000"])
    assert set(items) == {"ITEM-000", "ITEM-149"}
    assert items["ITEM-000"].base_price == Decimal("12.50")
    assert items["ITEM-000"].active
    assert not items["ITEM-149"].active
    sent = [[value.text for value in seen.root.findall(".//filter/in/value")] for seen in fake.requests[1:]]
    assert [len(values) for values in sent] == [100, 50]
    assert sent[0][0] == "ITEM-000"


def test_find_sales_documents_combines_criteria_with_the_transaction_type(clock: FakeClock) -> None:
    row = {
        "DOCID": "Sales Order-SO0001",
        "DOCPARID": "Sales Order",
        "PONUMBER": "006AAA",
        "WHENCREATED": "11/28/2026",
        "TOTAL": "12000.00",
        "SALESFORCE_OPPORTUNITY_ID": "006AAA",
    }
    fake = FakeIntacct([session_reply(), page_reply(page("SODOCUMENT", [row], remaining=0))])
    with make_client(fake, clock) as client:
        [document] = client.find_sales_documents(
            reference_no="006AAA", field_values={"SALESFORCE_OPPORTUNITY_ID": "006AAA"}
        )
    assert document.doc_id == "Sales Order-SO0001"
    assert document.date_created == date(2026, 11, 28)
    assert document.total == Decimal("12000.00")
    assert document.fields["SALESFORCE_OPPORTUNITY_ID"] == "006AAA"
    sent = fake.requests[1].root
    assert sent.findtext(".//query/docparid") == "Sales Order"
    assert [node.findtext("field") for node in sent.findall(".//filter/and/equalto")] == [
        "PONUMBER",
        "SALESFORCE_OPPORTUNITY_ID",
    ]
    selected = [node.text for node in sent.findall(".//select/field")]
    assert "SALESFORCE_OPPORTUNITY_ID" in selected


def test_sales_document_selects_leave_out_field_names_no_source_confirms(clock: FakeClock) -> None:
    fake = FakeIntacct(
        [
            session_reply(),
            page_reply(page("SODOCUMENT", [], remaining=0)),
            page_reply(page("SODOCUMENT", [], remaining=0)),
            page_reply(page("SODOCUMENTENTRY", [], remaining=0)),
        ]
    )
    with make_client(fake, clock) as client:
        client.find_sales_documents(reference_no="006AAA", fields=SALES_DOCUMENT_LOOKUP_FIELDS)
        client.find_sales_documents(reference_no="006AAA")
        client.get_sales_document_lines("Sales Order-SO0001")
    lookup, header, lines = (
        [node.text for node in sent.root.findall(".//select/field")] for sent in fake.requests[1:]
    )
    assert lookup == ["RECORDNO", "DOCNO", "DOCID", "DOCPARID", "STATE", "CUSTVENDID", "PONUMBER"]
    assert not {"TERMNAME", "EXTERNALID", "BASECURR"} & set(header)
    assert not {"UNIT", "DISCOUNT", "LOCATIONID", "DEPARTMENTID", "REVRECSTARTDATE", "REVRECENDDATE"} & set(
        lines
    )


def test_find_sales_documents_needs_a_criterion(clock: FakeClock) -> None:
    with make_client(FakeIntacct(), clock) as client, pytest.raises(IntacctRequestError):
        client.find_sales_documents()


def test_sales_document_lines_come_back_in_line_order_with_decimals(clock: FakeClock) -> None:
    rows = [
        {
            "LINE_NO": "1",
            "ITEMID": "B",
            "QUANTITY": "2",
            "PRICE": "0",
            "TOTAL": "0.00",
            "REVRECSTARTDATE": "04/01/2026",
        },
        {
            "LINE_NO": "0",
            "ITEMID": "A",
            "QUANTITY": "1",
            "PRICE": "12000",
            "TOTAL": "12000.00",
            "DISCOUNT": "10",
        },
    ]
    fake = FakeIntacct([session_reply(), page_reply(page("SODOCUMENTENTRY", rows, remaining=0))])
    with make_client(fake, clock) as client:
        lines = client.get_sales_document_lines("Sales Order-SO0001")
    assert [(line.line_no, line.item_id) for line in lines] == [(0, "A"), (1, "B")]
    assert lines[0].discount_percent == Decimal(10)
    assert lines[1].price == Decimal(0)
    assert lines[1].revrec_start_date == date(2026, 4, 1)
    assert fake.requests[1].root.findtext(".//filter/equalto/value") == "Sales Order-SO0001"


def test_find_customers_by_custom_field(clock: FakeClock) -> None:
    rows = [
        {"RECORDNO": "5", "CUSTOMERID": "C-5", "NAME": "Acme", "STATUS": "active", "SALESFORCE_ID": "001X"}
    ]
    fake = FakeIntacct([session_reply(), page_reply(page("CUSTOMER", rows, remaining=0)), ok()])
    with make_client(fake, clock) as client:
        [customer] = client.find_customers("SALESFORCE_ID", "001X")
        assert client.get_customer("C-404") is None
    assert (customer.customer_id, customer.fields["SALESFORCE_ID"]) == ("C-5", "001X")
    sent = fake.requests[1].root
    assert sent.findtext(".//filter/equalto/field") == "SALESFORCE_ID"
    assert sent.findtext(".//filter/equalto/value") == "001X"
