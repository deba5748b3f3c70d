"""The Intacct sandbox over HTTPS, the accountant's side: converting an order to a Sales Invoice, the AR
invoice it posts, payments against it, and a sandbox day moved by the test."""

from __future__ import annotations

from datetime import date, timedelta
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
    read_by_query,
)

pytestmark = pytest.mark.integration

SO1, SO2 = "Sales Order-SO0001", "Sales Order-SO0002"
INV1, INV2 = "Sales Invoice-INV0001", "Sales Invoice-INV0002"
INVOICE_FIELDS = [
    "RECORDNO",
    "RECORDID",
    "STATE",
    "CUSTOMERID",
    "CUSTOMERNAME",
    "DOCNUMBER",
    "DESCRIPTION",
    "TERMNAME",
    "WHENCREATED",
    "WHENPOSTED",
    "WHENDUE",
    "WHENPAID",
    "CURRENCY",
    "BASECURR",
    "TOTALENTERED",
    "TOTALPAID",
    "TOTALDUE",
    "TRX_TOTALENTERED",
    "TRX_TOTALPAID",
    "TRX_TOTALDUE",
    "MODULEKEY",
]
DOCUMENT_FIELDS = [
    "DOCID",
    "STATE",
    "PONUMBER",
    "CREATEDFROM",
    "PRRECORDKEY",
    "TOTAL",
    "TRX_TOTALENTERED",
    "TRX_TOTALPAID",
    "TRX_TOTALDUE",
]


# ---------------------------------------------------------------------------- helpers


@pytest.fixture
def client(intacct: IntacctSandboxHandle) -> Client:
    return Client(intacct)


@pytest.fixture
def order(client: Client) -> str:
    """Customers C-00001 (Acme) and C-00002 (Beta); Sales Order SO0001 for Acme, reference OPP-1, dated
    11/28/2026 on N30: 1 x SUB-PLATFORM (12000) and 2 x SVC-TRAINING (800), 13600.00 in all."""
    reply = client.call(create_customer("acme", "Acme") + create_customer("beta", "Beta"))
    assert all(result.findtext("status") == "success" for result in reply.results()), reply.text
    lines = line_xml("SUB-PLATFORM", "1") + line_xml("SVC-TRAINING", "2")
    reply = client.call(
        function("order", order_xml(before_terms="<referenceno>OPP-1</referenceno>", lines=lines))
    )
    assert reply.result().findtext("key") == SO1, reply.text
    return SO1


def source_line(item: str, quantity: str, key: str) -> str:
    """A line taken from a source line (`sourcelinekey` comes after `price` in the schema)."""
    return (
        f"<sotransitem><itemid>{item}</itemid><quantity>{quantity}</quantity>"
        f"<sourcelinekey>{key}</sourcelinekey></sotransitem>"
    )


def convert_xml(
    source: str,
    *,
    definition: str = "Sales Invoice",
    customer: str = "C-00001",
    lines: str | None = None,
    reference: str = "",
    day: tuple[str, str, str] = ("2026", "12", "01"),
) -> str:
    """create_sotransaction converting `source` (createdfrom comes before customerid in the schema)."""
    reference_xml = f"<referenceno>{reference}</referenceno>" if reference else ""
    body = lines if lines is not None else line_xml("SUB-PLATFORM", "1") + line_xml("SVC-TRAINING", "2")
    return (
        f"<create_sotransaction><transactiontype>{definition}</transactiontype>"
        + date_xml("datecreated", *day)
        + f"<createdfrom>{source}</createdfrom><customerid>{customer}</customerid>{reference_xml}"
        + f"<termname>N30</termname><sotransitems>{body}</sotransitems></create_sotransaction>"
    )


def convert(
    client: Client,
    source: str,
    *,
    definition: str = "Sales Invoice",
    lines: str | None = None,
    reference: str = "",
) -> str:
    """Convert `source` for C-00001; returns the new document's DOCID."""
    xml = convert_xml(source, definition=definition, lines=lines, reference=reference)
    reply = client.call(function("convert", xml))
    result = reply.result()
    assert result.findtext("status") == "success", reply.text
    return result.findtext("key", "")


def refusal(client: Client, functions: str) -> list[str]:
    """The description2 of each error of a function that must fail."""
    reply = client.call(functions)
    result = reply.result()
    assert result.findtext("status") == "failure", reply.text
    return [error.findtext("description2", "") for error in result.findall("errormessage/error")]


def queried(
    client: Client, object_name: str, select: list[str], filter_xml: str = ""
) -> list[dict[str, str]]:
    reply = client.call(function("query", query_xml(object_name, select, filter_xml)))
    assert reply.result().findtext("status") == "success", reply.text
    return [fields(record) for record in reply.result().findall(f"data/{object_name}")]


def document(client: Client, doc_id: str) -> dict[str, str]:
    [found] = queried(client, "SODOCUMENT", DOCUMENT_FIELDS, eq("DOCID", doc_id))
    return found


def invoices(client: Client, filter_xml: str = "", select: list[str] | None = None) -> list[dict[str, str]]:
    return queried(client, "ARINVOICE", select or INVOICE_FIELDS, filter_xml)


def line_keys(client: Client, doc_id: str) -> list[str]:
    """The RECORDNOs of a document's lines, in line order."""
    rows = queried(client, "SODOCUMENTENTRY", ["RECORDNO", "LINE_NO"], eq("DOCHDRID", doc_id))
    return [row["RECORDNO"] for row in sorted(rows, key=lambda row: int(row["LINE_NO"]))]


def payment_xml(
    details: list[tuple[str, str]],
    *,
    customer: str = "C-00001",
    receipt: str = "12/10/2026",
    method: str = "Cash",
    account: str = "<FINANCIALENTITY>BOA-CHECKING</FINANCIALENTITY>",
) -> str:
    detail_xml = "".join(
        f"<ARPYMTDETAIL><RECORDKEY>{key}</RECORDKEY><TRX_PAYMENTAMOUNT>{amount}</TRX_PAYMENTAMOUNT></ARPYMTDETAIL>"
        for key, amount in details
    )
    return (
        f"<create><ARPYMT>{account}<PAYMENTMETHOD>{method}</PAYMENTMETHOD><CUSTOMERID>{customer}</CUSTOMERID>"
        f"<RECEIPTDATE>{receipt}</RECEIPTDATE><ARPYMTDETAILS>{detail_xml}</ARPYMTDETAILS></ARPYMT></create>"
    )


def pay(client: Client, details: list[tuple[str, str]], **options: str) -> str:
    """Record a payment; returns its RECORDNO."""
    reply = client.call(function("pay", payment_xml(details, **options)))
    result = reply.result()
    assert result.findtext("status") == "success", reply.text
    assert result.findtext("function") == "create"
    return result.findtext("data/arpymt/RECORDNO", "")


def errors_of(result: Element) -> list[str]:
    return [error.findtext("description2", "") for error in result.findall("errormessage/error")]


# ---------------------------------------------------------------------------- conversion


def test_an_order_converted_whole_becomes_a_sales_invoice_that_posts_an_ar_invoice(
    client: Client, order: str
) -> None:
    invoice_id = convert(client, order)

    assert invoice_id == INV1
    assert document(client, order)["STATE"] == "Converted"
    assert document(client, INV1) == {
        "DOCID": INV1,
        "STATE": "Pending",
        "PONUMBER": "OPP-1",  # copied from the order (conversion_copies_reference, default true)
        "CREATEDFROM": order,
        "PRRECORDKEY": "1",
        "TOTAL": "13600.00",
        "TRX_TOTALENTERED": "13600.00",
        "TRX_TOTALPAID": "0.00",
        "TRX_TOTALDUE": "13600.00",
    }
    assert invoices(client) == [
        {
            "RECORDNO": "1",
            "RECORDID": "INV0001",
            "STATE": "Posted",
            "CUSTOMERID": "C-00001",
            "CUSTOMERNAME": "Acme",
            "DOCNUMBER": "OPP-1",
            "DESCRIPTION": "",
            "TERMNAME": "N30",
            "WHENCREATED": "12/01/2026",
            "WHENPOSTED": "12/01/2026",
            "WHENDUE": "12/31/2026",
            "WHENPAID": "",
            "CURRENCY": "USD",
            "BASECURR": "USD",
            "TOTALENTERED": "13600.00",
            "TOTALPAID": "0.00",
            "TOTALDUE": "13600.00",
            "TRX_TOTALENTERED": "13600.00",
            "TRX_TOTALPAID": "0.00",
            "TRX_TOTALDUE": "13600.00",
            "MODULEKEY": "8.SO",
        }
    ]
    # A converted order cannot be changed any more.
    update = f'<update_sotransaction key="{order}"><message>late change</message></update_sotransaction>'
    assert refusal(client, function("update", update))[0].startswith(
        f"Transaction {order} cannot be updated: its state is Converted."
    )


def test_the_ar_invoice_reads_like_every_other_object(client: Client, order: str) -> None:
    convert(client, order)

    reply = client.call(
        function("rbq", read_by_query("ARINVOICE", "CUSTOMERID = 'C-00001'", fields_list="RECORDNO,STATE"))
        + function("read", "<read><object>ARINVOICE</object><keys>1</keys><fields>*</fields></read>")
        + function("lookup", "<lookup><object>ARINVOICE</object></lookup>")
    )

    assert [fields(row) for row in reply.result(0).findall("data/arinvoice")] == [
        {"RECORDNO": "1", "STATE": "Posted"}
    ]
    [read] = reply.result(1).findall("data/ARINVOICE")
    assert fields(read)["RECORDID"] == "INV0001"
    assert set(fields(read)) >= {*INVOICE_FIELDS, "AUWHENCREATED", "WHENMODIFIED", "DUE_IN_DAYS"}
    types = {
        node.findtext("ID"): node.findtext("DATATYPE")
        for node in reply.result(2).findall("data/Type/Fields/Field")
    }
    assert types["WHENCREATED"] == "DATE"
    assert types["WHENMODIFIED"] == "TIMESTAMP"
    assert types["TOTALDUE"] == "CURRENCY"
    assert types["DUE_IN_DAYS"] == "INTEGER"
    assert [record["RECORDID"] for record in client.sandbox.admin.records("ARINVOICE")] == ["INV0001"]


def test_an_order_converted_line_by_line_is_partially_converted_then_converted(
    client: Client, order: str
) -> None:
    first, second = line_keys(client, order)

    convert(client, order, lines=source_line("SUB-PLATFORM", "1", first))
    assert document(client, order)["STATE"] == "Partially Converted"
    assert [(row["RECORDID"], row["TOTALDUE"]) for row in invoices(client)] == [("INV0001", "12000.00")]
    # The same source line cannot be converted twice.
    again = convert_xml(order, lines=source_line("SUB-PLATFORM", "1", first))
    assert refusal(client, function("again", again))[0] == (
        f"Line {first} of {order} has already been converted (sourcelinekey on line 1)."
    )

    convert(client, order, lines=source_line("SVC-TRAINING", "2", second))
    assert document(client, order)["STATE"] == "Converted"
    assert [(row["RECORDID"], row["TOTALDUE"]) for row in invoices(client)] == [
        ("INV0001", "12000.00"),
        ("INV0002", "1600.00"),
    ]
    assert document(client, INV2)["CREATEDFROM"] == order


def test_a_quote_converts_to_an_order_which_converts_to_an_invoice(client: Client, order: str) -> None:
    reply = client.call(function("quote", order_xml(definition="Sales Quote")))
    quote = reply.result().findtext("key", "")
    assert quote == "Sales Quote-SQ0001", reply.text

    from_quote = convert(client, quote, definition="Sales Order")
    convert(client, from_quote)

    assert document(client, quote)["STATE"] == "Converted"
    assert document(client, from_quote)["STATE"] == "Converted"
    assert invoices(client, select=["RECORDID"]) == [{"RECORDID": "INV0001"}]


@pytest.mark.parametrize(
    ("prepare", "request_xml", "expected"),
    [
        pytest.param(
            "close",
            convert_xml(SO1),
            f"{SO1} cannot be converted: its state is Closed.",
            id="closed source",
        ),
        pytest.param(
            "convert",
            convert_xml(SO1),
            f"{SO1} cannot be converted: its state is Converted.",
            id="converted source",
        ),
        pytest.param(
            "",
            convert_xml(SO1, definition="Sales Quote"),
            f"{SO1} cannot be converted to a Sales Quote: a Sales Order converts to Sales Invoice.",
            id="backwards",
        ),
        pytest.param(
            "convert",
            convert_xml(INV1, definition="Sales Order"),
            f"{INV1} cannot be converted to a Sales Order: a Sales Invoice converts to no other transaction.",
            id="from an invoice",
        ),
        pytest.param(
            "",
            convert_xml(SO1, customer="C-00002"),
            f"{SO1} belongs to customer C-00001, not C-00002.",
            id="other customer",
        ),
        pytest.param(
            "",
            convert_xml("Sales Order-SO9999"),
            "Invalid createdfrom 'Sales Order-SO9999': there is no transaction with that DOCID.",
            id="unknown source",
        ),
        pytest.param(
            "",
            convert_xml(SO1, lines=source_line("SUB-PLATFORM", "1", "999")),
            f"Invalid sourcelinekey 999 on line 1: it is not a line of {SO1}.",
            id="line of another document",
        ),
    ],
)
def test_a_conversion_the_workflow_does_not_allow_is_refused_and_changes_nothing(
    client: Client, order: str, prepare: str, request_xml: str, expected: str
) -> None:
    if prepare == "close":
        close = f'<update_sotransaction key="{order}"><state>Closed</state></update_sotransaction>'
        assert client.call(function("close", close)).result().findtext("status") == "success"
    if prepare == "convert":
        convert(client, order)
    state_before = document(client, order)["STATE"]
    invoices_before = invoices(client, select=["RECORDNO"])

    assert refusal(client, function("refused", request_xml)) == [
        expected,
        "Could not create Document record!",
    ]
    assert document(client, order)["STATE"] == state_before
    assert invoices(client, select=["RECORDNO"]) == invoices_before


def test_without_conversion_copies_reference_the_invoice_gets_no_ponumber(client: Client, order: str) -> None:
    client.sandbox.admin.configure(conversion_copies_reference=False)

    convert(client, order)
    assert document(client, INV1)["PONUMBER"] == ""
    assert invoices(client, select=["DOCNUMBER"]) == [{"DOCNUMBER": ""}]
    # A reference the request gives is kept either way.
    reply = client.call(function("order-2", order_xml(lines=line_xml("HW-GATEWAY", "1"))))
    assert reply.result().findtext("key") == SO2, reply.text
    convert(client, SO2, lines=line_xml("HW-GATEWAY", "1"), reference="OPP-2")
    assert document(client, INV2)["PONUMBER"] == "OPP-2"


def test_a_draft_invoice_posts_nothing_until_it_is_pending_and_deleting_it_reverts_the_order(
    client: Client, order: str
) -> None:
    draft = convert_xml(order).replace("</termname>", "</termname><state>Draft</state>")
    assert client.call(function("draft", draft)).result().findtext("key") == INV1
    assert document(client, INV1)["PRRECORDKEY"] == ""
    assert invoices(client) == []

    pending = f'<update_sotransaction key="{INV1}"><state>Pending</state></update_sotransaction>'
    assert client.call(function("pending", pending)).result().findtext("status") == "success"
    [posted] = invoices(client, select=["RECORDNO", "TOTALDUE"])
    assert posted == {"RECORDNO": "1", "TOTALDUE": "13600.00"}

    delete = f'<delete_sotransaction key="{INV1}"/>'
    assert client.call(function("delete", delete)).result().findtext("status") == "success"
    assert invoices(client) == []
    assert document(client, order)["STATE"] == "Pending"


def test_an_update_of_an_unpaid_invoice_follows_into_its_ar_invoice(client: Client, order: str) -> None:
    convert(client, order)
    update = (
        f'<update_sotransaction key="{INV1}"><referenceno>OPP-1-B</referenceno>'
        '<updatesotransitems><updatesotransitem line_num="2"><quantity>1</quantity></updatesotransitem>'
        "</updatesotransitems></update_sotransaction>"
    )

    assert client.call(function("update", update)).result().findtext("status") == "success"

    [invoice] = invoices(client, select=["RECORDNO", "DOCNUMBER", "TOTALENTERED", "TOTALDUE", "STATE"])
    assert invoice == {
        "RECORDNO": "1",
        "DOCNUMBER": "OPP-1-B",
        "TOTALENTERED": "12800.00",
        "TOTALDUE": "12800.00",
        "STATE": "Posted",
    }
    assert document(client, INV1)["TRX_TOTALDUE"] == "12800.00"


# ---------------------------------------------------------------------------- payments


def test_a_partial_payment_then_the_rest(client: Client, order: str) -> None:
    convert(client, order)

    payment = pay(client, [("1", "5000.00")], receipt="12/10/2026")
    [invoice] = invoices(client)
    assert (invoice["STATE"], invoice["TOTALPAID"], invoice["TOTALDUE"], invoice["WHENPAID"]) == (
        "Partially Paid",
        "5000.00",
        "8600.00",
        "",
    )
    assert (invoice["TRX_TOTALPAID"], invoice["TRX_TOTALDUE"]) == ("5000.00", "8600.00")
    assert document(client, INV1)["TRX_TOTALDUE"] == "8600.00"
    assert payment == "1"

    pay(client, [("1", "8600")], receipt="12/20/2026", method="EFT")
    [invoice] = invoices(client)
    assert (invoice["STATE"], invoice["TOTALPAID"], invoice["TOTALDUE"], invoice["WHENPAID"]) == (
        "Paid",
        "13600.00",
        "0.00",
        "12/20/2026",
    )
    assert document(client, INV1)["TRX_TOTALDUE"] == "0.00"
    payments = queried(
        client, "ARPYMT", ["RECORDNO", "CUSTOMERID", "PAYMENTMETHOD", "RECEIPTDATE", "TOTALENTERED", "STATE"]
    )
    assert payments == [
        {
            "RECORDNO": "1",
            "CUSTOMERID": "C-00001",
            "PAYMENTMETHOD": "Cash",
            "RECEIPTDATE": "12/10/2026",
            "TOTALENTERED": "5000.00",
            "STATE": "C",
        },
        {
            "RECORDNO": "2",
            "CUSTOMERID": "C-00001",
            "PAYMENTMETHOD": "EFT",
            "RECEIPTDATE": "12/20/2026",
            "TOTALENTERED": "8600.00",
            "STATE": "C",
        },
    ]
    assert [record["ARPYMTDETAILS"] for record in client.sandbox.admin.records("ARPYMT")] == [
        [{"RECORDKEY": "1", "TRX_PAYMENTAMOUNT": "5000.00"}],
        [{"RECORDKEY": "1", "TRX_PAYMENTAMOUNT": "8600.00"}],
    ]
    # A paid invoice's document is not changed or deleted any more.
    update = f'<update_sotransaction key="{INV1}"><message>x</message></update_sotransaction>'
    assert refusal(client, function("update", update))[0] == (
        f"Transaction {INV1} cannot be updated: "
        "payments of 13600.00 have been applied to its AR invoice INV0001."
    )


@pytest.mark.parametrize(
    ("details", "options", "expected"),
    [
        pytest.param(
            [("1", "13600.01")],
            {},
            "The payment of 13600.01 on AR invoice INV0001 is more than its amount due of 13600.00.",
            id="overpayment",
        ),
        pytest.param(
            [("1", "10000"), ("1", "4000")],
            {},
            "The payment of 14000.00 on AR invoice INV0001 is more than its amount due of 13600.00.",
            id="overpayment in two details",
        ),
        pytest.param(
            [("1", "100"), ("99", "100")],
            {},
            "Invalid RECORDKEY 99: there is no AR invoice with that RECORDNO.",
            id="unknown invoice",
        ),
        pytest.param(
            [("1", "100")],
            {"customer": "C-00002"},
            "AR invoice INV0001 (RECORDKEY 1) belongs to customer C-00001, not C-00002.",
            id="another customer's invoice",
        ),
        pytest.param(
            [("1", "0")],
            {},
            "Invalid TRX_PAYMENTAMOUNT on payment detail 1 0: the amount must be greater than 0.",
            id="zero",
        ),
        pytest.param(
            [("1", "-5")],
            {},
            "Invalid TRX_PAYMENTAMOUNT on payment detail 1 -5: the amount must be greater than 0.",
            id="negative",
        ),
        pytest.param(
            [("1", "100")],
            {"method": "Bitcoin"},
            "Invalid PAYMENTMETHOD 'Bitcoin'.",
            id="payment method",
        ),
        pytest.param(
            [("1", "100")],
            {"receipt": "2026-12-10"},
            "Invalid RECEIPTDATE '2026-12-10': a date mm/dd/yyyy is required.",
            id="receipt date",
        ),
        pytest.param(
            [("1", "100")],
            {"account": ""},
            "Exactly one of FINANCIALENTITY, UNDEPOSITEDACCOUNTNO or PRBATCH is required.",
            id="no account",
        ),
    ],
)
def test_a_payment_intacct_would_refuse_applies_nothing(
    client: Client, order: str, details: list[tuple[str, str]], options: dict[str, str], expected: str
) -> None:
    convert(client, order)

    reply = client.call(function("pay", payment_xml(details, **options)))

    result = reply.result()
    assert result.findtext("status") == "failure", reply.text
    assert errors_of(result) == [expected, "Could not create ARPYMT record!"]
    [invoice] = invoices(client, select=["STATE", "TOTALPAID", "TOTALDUE"])
    assert invoice == {"STATE": "Posted", "TOTALPAID": "0.00", "TOTALDUE": "13600.00"}
    assert client.sandbox.admin.records("ARPYMT") == []


def test_the_legacy_create_arpayment_applies_a_payment_too(client: Client, order: str) -> None:
    convert(client, order)
    legacy = (
        "<create_arpayment><customerid>C-00001</customerid><paymentamount>600</paymentamount>"
        "<bankaccountid>BOA-CHECKING</bankaccountid>"
        + date_xml("datereceived", "2026", "12", "05")
        + "<paymentmethod>Printed Check</paymentmethod>"
        "<arpaymentitem><invoicekey>1</invoicekey><amount>600</amount></arpaymentitem></create_arpayment>"
    )

    reply = client.call(function("legacy", legacy))

    assert reply.result().findtext("key") == "1", reply.text
    [invoice] = invoices(client, select=["STATE", "TOTALDUE"])
    assert invoice == {"STATE": "Partially Paid", "TOTALDUE": "13000.00"}


# ---------------------------------------------------------------------------- the sandbox's day


def test_when_modified_filters_compare_as_date_times_and_find_what_changed_since(
    client: Client, order: str
) -> None:
    admin = client.sandbox.admin
    admin.set_today("2026-12-20")
    reply = client.call(function("order-2", order_xml(lines=line_xml("HW-GATEWAY", "2"))))
    assert reply.result().findtext("key") == SO2, reply.text
    convert(client, order)
    convert(client, SO2, lines=line_xml("HW-GATEWAY", "2"))
    stamps = [row["WHENMODIFIED"] for row in invoices(client, select=["WHENMODIFIED"])]
    assert all(stamp.startswith("12/20/2026 ") for stamp in stamps), stamps

    admin.set_today(date(2027, 1, 15))  # the text "01/15/2027" sorts before "12/20/2026"
    pay(client, [("2", "998")], receipt="01/15/2027")
    since = "01/15/2027 00:00:00"

    changed = invoices(
        client, eq("WHENMODIFIED", since, "greaterthanorequalto"), select=["RECORDID", "WHENMODIFIED"]
    )
    assert [row["RECORDID"] for row in changed] == ["INV0002"]
    assert changed[0]["WHENMODIFIED"].startswith("01/15/2027 ")
    open_items = invoices(
        client,
        "<and>"
        + eq("TOTALDUE", "0", "greaterthan")
        + "<in><field>CUSTOMERID</field><value>C-00001</value><value>C-00002</value></in>"
        + eq("STATE", "Posted")
        + "</and>",
        select=["RECORDID"],
    )
    assert open_items == [{"RECORDID": "INV0001"}]
    by_query = client.call(
        function(
            "rbq",
            read_by_query(
                "ARINVOICE", f"WHENMODIFIED >= '{since}' AND STATE = 'Paid'", fields_list="RECORDID"
            ),
        )
    )
    assert [fields(row) for row in by_query.result().findall("data/arinvoice")] == [{"RECORDID": "INV0002"}]
    # The order documents carry the invoice's totals: open items by TRX_TOTALDUE.
    open_documents = queried(client, "SODOCUMENT", ["DOCID"], eq("TRX_TOTALDUE", "0", "greaterthan"))
    assert open_documents == [{"DOCID": INV1}]


def test_moving_the_sandbox_day_ages_the_invoice(client: Client, order: str) -> None:
    convert(client, order)
    [invoice] = invoices(client, select=["WHENDUE", "DUE_IN_DAYS"])
    assert invoice["WHENDUE"] == "12/31/2026"

    config = client.sandbox.admin.set_today(date(2026, 12, 31) + timedelta(days=130))
    assert config["today"] == "2027-05-10"

    assert invoices(client, select=["DUE_IN_DAYS"]) == [{"DUE_IN_DAYS": "130"}]
    assert client.sandbox.admin.records("ARINVOICE")[0]["DUE_IN_DAYS"] == "130"
    filtered = invoices(client, eq("DUE_IN_DAYS", "90", "greaterthan"), select=["RECORDID"])
    assert filtered == [{"RECORDID": "INV0001"}]
    # Records written now carry the moved day, the time of day keeps running; sessions are unaffected.
    pay(client, [("1", "100")], receipt="05/10/2027")
    [stamped] = invoices(client, select=["WHENMODIFIED"])
    assert stamped["WHENMODIFIED"].startswith("05/10/2027 ")

    assert client.sandbox.admin.set_today(None)["today"] is None
    client.sandbox.admin.reset()
    assert client.sandbox.admin.configure()["today"] is None


@pytest.mark.parametrize("today", ["2027-02-30", "05/10/2027", 20270510, True])
def test_the_admin_api_refuses_a_day_that_is_not_one(intacct: IntacctSandboxHandle, today: object) -> None:
    with pytest.raises(httpx.HTTPStatusError) as raised:
        intacct.admin._call("PUT", "/config", {"today": today})
    assert raised.value.response.status_code == 400
