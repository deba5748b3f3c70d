"""The Intacct sandbox over HTTPS: update_sotransaction, delete_sotransaction and converted documents."""

from __future__ import annotations

from xml.etree.ElementTree import Element

import httpx
import pytest

from tests.integration.conftest import IntacctSandboxHandle
from tests.integration.test_intacct_sandbox import (
    Client,
    create_customer,
    date_xml,
    eq,
    fields,
    function,
    line_xml,
    order_xml,
    query_xml,
)

pytestmark = pytest.mark.integration

SO1 = "Sales Order-SO0001"
CONVERSION_STATES = ("Converted", "Partially Converted", "In Progress")


@pytest.fixture
def client(intacct: IntacctSandboxHandle) -> Client:
    return Client(intacct)


@pytest.fixture
def order(client: Client) -> str:
    """Customer C-00001 and one Sales Order with two lines: 1 x SUB-PLATFORM (12000) and 2 x SVC-TRAINING."""
    reply = client.call(create_customer("customer", "Acme"))
    assert reply.result().findtext("status") == "success", reply.text
    lines = line_xml("SUB-PLATFORM", "1") + line_xml("SVC-TRAINING", "2")
    reply = client.call(
        function("order", order_xml(before_terms="<referenceno>OPP-1</referenceno>", lines=lines))
    )
    assert reply.result().findtext("key") == SO1, reply.text
    return SO1


def update_xml(key: str, body: str = "", items: str = "") -> str:
    items_xml = f"<updatesotransitems>{items}</updatesotransitems>" if items else ""
    return f'<update_sotransaction key="{key}">{body}{items_xml}</update_sotransaction>'


def header(client: Client, doc_id: str = SO1) -> dict[str, str]:
    select = ["DOCID", "STATE", "PONUMBER", "MESSAGE", "TOTAL", "WHENCREATED", "WHENDUE", "TERMNAME"]
    reply = client.call(function("read-header", query_xml("SODOCUMENT", select, eq("DOCID", doc_id))))
    found = reply.result().findall("data/SODOCUMENT")
    assert len(found) == 1, reply.text
    return fields(found[0])


def lines_of(client: Client, doc_id: str = SO1) -> list[dict[str, str]]:
    select = ["LINE_NO", "ITEMID", "QUANTITY", "PRICE", "TOTAL", "MEMO", "ITEMDESC"]
    reply = client.call(function("read-lines", query_xml("SODOCUMENTENTRY", select, eq("DOCHDRID", doc_id))))
    rows = [fields(row) for row in reply.result().findall("data/SODOCUMENTENTRY")]
    return sorted(rows, key=lambda row: int(row["LINE_NO"]))


def errors(result: Element) -> list[str]:
    """The description2 of each error of a function result."""
    return [error.findtext("description2", "") for error in result.findall("errormessage/error")]


# ---------------------------------------------------------------------------- update


def test_update_replaces_header_fields_and_lines_in_place_and_totals_follow(
    client: Client, order: str
) -> None:
    assert header(client)["TOTAL"] == "13600.00"  # 12000 + 2 x 800

    body = (
        date_xml("datecreated", "2026", "12", "01")
        + "<referenceno>OPP-1-B</referenceno><termname>N15</termname><message>Changed</message>"
    )
    items = (
        '<updatesotransitem line_num="1"><quantity>2</quantity><memo>two seats</memo></updatesotransitem>'
        '<updatesotransitem line_num="2"><price>500</price></updatesotransitem>'
    )
    reply = client.call(function("update", update_xml(order, body, items)))

    result = reply.result()
    assert result.findtext("status") == "success", reply.text
    assert result.findtext("function") == "update_sotransaction"
    assert result.findtext("key") == order
    assert header(client) == {
        "DOCID": order,
        "STATE": "Pending",
        "PONUMBER": "OPP-1-B",
        "MESSAGE": "Changed",
        "TOTAL": "25000.00",  # 2 x 12000 + 2 x 500
        "WHENCREATED": "12/01/2026",
        "WHENDUE": "12/16/2026",
        "TERMNAME": "N15",
    }
    assert [
        (line["LINE_NO"], line["QUANTITY"], line["PRICE"], line["TOTAL"], line["MEMO"])
        for line in lines_of(client)
    ] == [
        ("0", "2", "12000", "24000.00", "two seats"),
        ("1", "2", "500", "1000.00", ""),
    ]


def test_update_appends_a_line_after_the_existing_ones(client: Client, order: str) -> None:
    items = "<sotransitem><itemid>HW-GATEWAY</itemid><quantity>3</quantity><memo>new</memo></sotransitem>"
    reply = client.call(function("append", update_xml(order, items=items)))

    assert reply.result().findtext("status") == "success", reply.text
    assert [(line["LINE_NO"], line["ITEMID"], line["TOTAL"]) for line in lines_of(client)] == [
        ("0", "SUB-PLATFORM", "12000.00"),
        ("1", "SVC-TRAINING", "1600.00"),
        ("2", "HW-GATEWAY", "1497.00"),
    ]
    assert header(client)["TOTAL"] == "15097.00"


def test_update_of_an_unknown_document_fails(client: Client, order: str) -> None:
    reply = client.call(function("unknown", update_xml("Sales Order-SO9999", "<message>x</message>")))

    result = reply.result()
    assert result.findtext("status") == "failure"
    assert result.findtext("errormessage/error/errorno") == "BL01001973"
    assert errors(result) == [
        "Cannot update non-existing transaction with key 'Sales Order-SO9999'.",
        "Could not update Document record!",
    ]


@pytest.mark.parametrize("line_num", ["0", "3"])
def test_update_of_a_line_that_does_not_exist_fails_and_changes_nothing(
    client: Client, order: str, line_num: str
) -> None:
    items = (
        '<updatesotransitem line_num="1"><memo>kept?</memo></updatesotransitem>'
        f'<updatesotransitem line_num="{line_num}"><memo>no</memo></updatesotransitem>'
    )
    reply = client.call(function("bad-line", update_xml(order, "<message>changed</message>", items)))

    result = reply.result()
    assert result.findtext("status") == "failure"
    assert errors(result)[0] == (
        f"Line {line_num} does not exist on transaction {order}: it has 2 lines, numbered from 1."
    )
    assert header(client)["MESSAGE"] == ""
    assert [line["MEMO"] for line in lines_of(client)] == ["", ""]


def test_update_with_an_unknown_item_fails_as_create_does(client: Client, order: str) -> None:
    replaced = '<updatesotransitem line_num="1"><itemid>NO-SUCH-ITEM</itemid></updatesotransitem>'
    appended = line_xml("NO-SUCH-ITEM")

    for control_id, items in (("replace", replaced), ("append", appended)):
        result = client.call(function(control_id, update_xml(order, items=items))).result()
        assert result.findtext("status") == "failure"
        assert errors(result)[0].startswith("Invalid Item NO-SUCH-ITEM on line ")
    assert header(client)["TOTAL"] == "13600.00"


@pytest.mark.parametrize("state", CONVERSION_STATES)
def test_converted_or_converting_documents_cannot_be_updated(client: Client, order: str, state: str) -> None:
    assert client.sandbox.admin.convert_sales_document(order, state) == {"DOCID": order, "STATE": state}
    assert header(client)["STATE"] == state

    reply = client.call(function("update", update_xml(order, "<message>late change</message>")))

    result = reply.result()
    assert result.findtext("status") == "failure"
    assert errors(result) == [
        f"Transaction {order} cannot be updated: its state is {state}. A transaction that is In Progress, "
        "Converted or Partially Converted cannot be updated.",
        "Could not update Document record!",
    ]
    assert header(client)["MESSAGE"] == ""


def test_convert_endpoint_refuses_unknown_documents_and_states(client: Client, order: str) -> None:
    with pytest.raises(httpx.HTTPStatusError) as unknown:
        client.sandbox.admin.convert_sales_document("Sales Order-SO9999")
    assert unknown.value.response.status_code == 404
    with pytest.raises(httpx.HTTPStatusError) as bad_state:
        client.sandbox.admin.convert_sales_document(order, "Closed")
    assert bad_state.value.response.status_code == 400


@pytest.mark.parametrize("start", ["Draft", "Pending"])
def test_an_update_with_state_closed_closes_the_order(client: Client, order: str, start: str) -> None:
    if start == "Draft":
        assert (
            client.call(function("draft", update_xml(order, "<state>Draft</state>")))
            .result()
            .findtext("status")
            == "success"
        )
    assert header(client)["STATE"] == start

    reply = client.call(function("close", update_xml(order, "<state>Closed</state>")))

    assert reply.result().findtext("status") == "success", reply.text
    assert header(client)["STATE"] == "Closed"


def test_a_closed_order_cannot_be_updated_by_default(client: Client, order: str) -> None:
    client.call(function("close", update_xml(order, "<state>Closed</state>")))

    for control_id, body in (("reopen", "<state>Pending</state>"), ("message", "<message>x</message>")):
        result = client.call(function(control_id, update_xml(order, body))).result()
        assert result.findtext("status") == "failure"
        assert errors(result)[0] == f"Transaction {order} cannot be updated: its state is Closed."
    assert header(client)["STATE"] == "Closed"


def test_a_closed_order_can_be_reopened_when_configured(client: Client, order: str) -> None:
    client.sandbox.admin.configure(closed_orders_reopen=True)
    client.call(function("close", update_xml(order, "<state>Closed</state>")))

    reply = client.call(
        function("reopen", update_xml(order, "<message>again</message><state>Pending</state>"))
    )

    assert reply.result().findtext("status") == "success", reply.text
    assert (header(client)["STATE"], header(client)["MESSAGE"]) == ("Pending", "again")


def test_update_obeys_uniqueid_like_other_writes(client: Client, order: str) -> None:
    call = function("same-id", update_xml(order, items=line_xml("HW-GATEWAY")))

    first = client.call(call, uniqueid="true")
    second = client.call(call, uniqueid="true")

    assert first.result().findtext("status") == "success", first.text
    assert second.result().findtext("status") == "failure"
    assert errors(second.result()) == [
        "A successful transaction has already been recorded with the control id same-id."
    ]
    assert len(lines_of(client)) == 3


def test_a_failed_update_in_a_transaction_rolls_back_the_others(client: Client, order: str) -> None:
    good = function("good", update_xml(order, "<message>rolled back</message>"))
    bad = function(
        "bad", update_xml(order, items='<updatesotransitem line_num="9"><memo>x</memo></updatesotransitem>')
    )

    reply = client.call(good + bad, transaction=True)

    assert [result.findtext("status") for result in reply.results()] == ["aborted", "failure"]
    assert header(client)["MESSAGE"] == ""


# ---------------------------------------------------------------------------- delete


def test_delete_removes_the_document_and_its_lines(client: Client, order: str) -> None:
    reply = client.call(function("delete", f'<delete_sotransaction key="{order}"/>'))

    result = reply.result()
    assert result.findtext("status") == "success", reply.text
    assert result.findtext("function") == "delete_sotransaction"
    assert client.sandbox.admin.records("SODOCUMENT") == []
    assert client.sandbox.admin.records("SODOCUMENTENTRY") == []


def test_delete_of_an_unknown_document_fails(client: Client, order: str) -> None:
    reply = client.call(function("delete", '<delete_sotransaction key="Sales Order-SO9999"/>'))

    result = reply.result()
    assert result.findtext("status") == "failure"
    assert errors(result) == [
        "Cannot find transaction with key 'Sales Order-SO9999' to delete.",
        "Could not delete Document record!",
    ]
    assert len(client.sandbox.admin.records("SODOCUMENT")) == 1


@pytest.mark.parametrize("state", CONVERSION_STATES)
def test_delete_of_a_converted_document_fails(client: Client, order: str, state: str) -> None:
    client.sandbox.admin.convert_sales_document(order, state)

    result = client.call(function("delete", f'<delete_sotransaction key="{order}"/>')).result()

    assert result.findtext("status") == "failure"
    assert errors(result)[0] == (
        f"Transaction {order} cannot be deleted: its state is {state}. A transaction that is In Progress, "
        "Converted or Partially Converted cannot be deleted."
    )
    assert len(client.sandbox.admin.records("SODOCUMENTENTRY")) == 2
