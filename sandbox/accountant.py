"""Finance at work in Intacct, through the XML API: what the accountant does after a deal's order exists.

Used by the e2e tests, the demo and the benchmark to act as the accountant would: convert a Sales Order to
a Sales Invoice (create_sotransaction with createdfrom and each line's sourcelinekey, as
developer.intacct.com's Order Entry page and the .NET SDK write it), and record customer payments
against the AR invoice it posts (<create><ARPYMT>, as the AR payments page describes). It sends them
with the product's own Intacct client, so every request is checked by the sandbox against the schema.
"""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal
from xml.etree.ElementTree import Element, SubElement

from sfintacct.intacct.client import IntacctClient
from sfintacct.intacct.models import text_of
from sfintacct.intacct.query import equal_to
from sfintacct.intacct.request import IntacctFunction

INVOICE_DEFINITION = "Sales Invoice"
ORDER_DEFINITION = "Sales Order"
# The sandbox seeds no bank accounts; undeposited funds need no account of the company's.
UNDEPOSITED_FUNDS_ACCOUNT = "1010"


class Accountant:
    def __init__(self, intacct: IntacctClient) -> None:
        self.intacct = intacct

    def convert_to_invoice(self, order_doc_id: str, *, day: date) -> str:
        """The whole order becomes a Sales Invoice (each line from its source line); its DOCID."""
        [order] = self.intacct.query(
            "SODOCUMENT",
            ("DOCID", "CUSTVENDID", "PONUMBER"),
            query_filter=equal_to("DOCID", order_doc_id),
            docparid=ORDER_DEFINITION,
        )
        lines = sorted(
            self.intacct.query(
                "SODOCUMENTENTRY",
                ("RECORDNO", "LINE_NO", "ITEMID", "QUANTITY", "PRICE", "DISCOUNT"),
                query_filter=equal_to("DOCHDRID", order_doc_id),
                docparid=ORDER_DEFINITION,
            ),
            key=lambda line: int(text_of(line, "LINE_NO") or 0),
        )
        operation = Element("create_sotransaction")
        SubElement(operation, "transactiontype").text = INVOICE_DEFINITION
        _date(operation, "datecreated", day)
        SubElement(operation, "createdfrom").text = order_doc_id
        SubElement(operation, "customerid").text = text_of(order, "CUSTVENDID")
        SubElement(operation, "referenceno").text = text_of(order, "PONUMBER")
        SubElement(operation, "termname").text = "N30"
        items = SubElement(operation, "sotransitems")
        for line in lines:
            item = SubElement(items, "sotransitem")
            SubElement(item, "itemid").text = text_of(line, "ITEMID")
            SubElement(item, "quantity").text = text_of(line, "QUANTITY")
            if text_of(line, "DISCOUNT") not in ("", "0"):
                SubElement(item, "discountpercent").text = text_of(line, "DISCOUNT")
            SubElement(item, "price").text = text_of(line, "PRICE")
            SubElement(item, "sourcelinekey").text = text_of(line, "RECORDNO")
        result = self.intacct.run(IntacctFunction(_control_id("invoice"), operation, writes=True))
        return result.key or ""

    def invoice_of(self, invoice_doc_id: str) -> dict[str, str]:
        """The AR invoice a Sales Invoice posted (RECORDNO, RECORDID, TOTALDUE, ...)."""
        [document] = self.intacct.query(
            "SODOCUMENT",
            ("DOCID", "PRRECORDKEY"),
            query_filter=equal_to("DOCID", invoice_doc_id),
            docparid=INVOICE_DEFINITION,
        )
        [invoice] = self.intacct.query(
            "ARINVOICE",
            ("RECORDNO", "RECORDID", "CUSTOMERID", "TOTALENTERED", "TOTALPAID", "TOTALDUE", "WHENDUE"),
            query_filter=equal_to("RECORDNO", text_of(document, "PRRECORDKEY")),
        )
        return {name: text_of(invoice, name) for name in invoice}

    def pay(self, invoice_doc_id: str, amount: Decimal, *, day: date) -> str:
        """A customer payment of `amount` against the invoice; the payment's RECORDNO."""
        invoice = self.invoice_of(invoice_doc_id)
        operation = Element("create")
        payment = SubElement(operation, "ARPYMT")
        SubElement(payment, "PAYMENTMETHOD").text = "EFT"
        SubElement(payment, "CUSTOMERID").text = invoice["CUSTOMERID"]
        SubElement(payment, "RECEIPTDATE").text = day.strftime("%m/%d/%Y")
        SubElement(payment, "UNDEPOSITEDACCOUNTNO").text = UNDEPOSITED_FUNDS_ACCOUNT
        detail = SubElement(SubElement(payment, "ARPYMTDETAILS"), "ARPYMTDETAIL")
        SubElement(detail, "RECORDKEY").text = invoice["RECORDNO"]
        SubElement(detail, "TRX_PAYMENTAMOUNT").text = str(amount)
        result = self.intacct.run(IntacctFunction(_control_id("payment"), operation, writes=True))
        records = result.records()
        return text_of(records[0], "RECORDNO") if records else result.key or ""


def _date(parent: Element, tag: str, day: date) -> None:
    element = SubElement(parent, tag)
    SubElement(element, "year").text = str(day.year)
    SubElement(element, "month").text = f"{day.month:02d}"
    SubElement(element, "day").text = f"{day.day:02d}"


def _control_id(kind: str) -> str:
    return f"accountant-{kind}-{uuid.uuid4().hex[:12]}"
