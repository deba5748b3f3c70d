"""Converting an Order Entry document to the next one of its workflow: create_sotransaction with
`<createdfrom>` (the source's DOCID) and, per line, `<sourcelinekey>` (the RECORDNO of the source line).

Source [DOC-OE] https://developer.intacct.com/api/order-entry/order-entry-transactions/ ("createdfrom":
the transaction converted from; converting makes the source Converted or Partially Converted); the XSD
places `createdfrom` after `dateposted` and `sourcelinekey` after a line's `price`. README.md, "The
accountant's side", lists the rules and what is UNCERTAIN.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from xml.etree.ElementTree import Element

from sandbox.intacct.errors import FunctionFailure, business_error
from sandbox.intacct.store import CONVERTS_TO, CompanyData, Record, find_record
from sandbox.intacct.xmlout import child_text

CONVERTED, PARTIALLY_CONVERTED = "Converted", "Partially Converted"
# States a document cannot be converted from.
NOT_CONVERTIBLE = ("Closed", CONVERTED)
# Internal keys (not fields of any object, so never read or filtered on): the source line a converted
# line came from, and the state a source had before its first conversion (restored when every document
# made from it is deleted).
SOURCE_LINE_KEY = "_SOURCELINEKEY"
STATE_BEFORE_CONVERSION = "_STATEBEFORECONVERSION"


def conversion_failure(description2: str, correction: str = "") -> FunctionFailure:
    return FunctionFailure(
        business_error(description2, correction=correction),
        business_error("Could not create Document record!"),
    )


@dataclass(frozen=True)
class Conversion:
    """A checked conversion: the source document and, per new line, its source line's RECORDNO or ""."""

    source: Record
    line_keys: tuple[str, ...]


def check_conversion(
    data: CompanyData, element: Element, definition: str, customer_id: str, lines: Sequence[Element]
) -> Conversion | None:
    """The conversion a create_sotransaction asks for, refused unless Intacct's rules allow it."""
    created_from = child_text(element, "createdfrom")
    keys = tuple(child_text(line, "sourcelinekey") for line in lines)
    if not created_from:
        for number, key in enumerate(keys, 1):
            if key:
                raise conversion_failure(
                    f"sourcelinekey {key} on line {number} needs the transaction it comes from.",
                    "Send <createdfrom> with the DOCID of the source transaction.",
                )
        return None
    source = find_record(data, "SODOCUMENT", "DOCID", created_from)
    if source is None:
        raise conversion_failure(
            f"Invalid createdfrom '{created_from}': there is no transaction with that DOCID.",
            "Use the DOCID of the transaction to convert (for example Sales Order-SO0001).",
        )
    allowed = CONVERTS_TO.get(source["DOCPARID"], ())
    if definition not in allowed:
        raise conversion_failure(
            f"{created_from} cannot be converted to a {definition}: a {source['DOCPARID']} converts to "
            f"{' or '.join(allowed) if allowed else 'no other transaction'}.",
            "Follow the workflow Sales Quote, Sales Order, Sales Invoice.",
        )
    if source["CUSTVENDID"] != customer_id:
        raise conversion_failure(
            f"{created_from} belongs to customer {source['CUSTVENDID']}, not {customer_id}.",
            "Convert a transaction for its own customer.",
        )
    if source["STATE"] in NOT_CONVERTIBLE:
        raise conversion_failure(
            f"{created_from} cannot be converted: its state is {source['STATE']}.",
            "Only a transaction that is not Closed or Converted can be converted.",
        )
    source_lines = {line["RECORDNO"] for line in lines_of(data, created_from)}
    done = converted_line_keys(data, created_from)
    seen: set[str] = set()
    for number, key in enumerate(keys, 1):
        if not key:
            continue
        if key not in source_lines:
            raise conversion_failure(
                f"Invalid sourcelinekey {key} on line {number}: it is not a line of {created_from}.",
                "Use the RECORDNO of one of the source transaction's lines (SODOCUMENTENTRY).",
            )
        if key in done or key in seen:
            raise conversion_failure(
                f"Line {key} of {created_from} has already been converted (sourcelinekey on line {number}).",
            )
        seen.add(key)
    return Conversion(source, keys)


def lines_of(data: CompanyData, doc_id: str) -> list[Record]:
    return [line for line in data.records["SODOCUMENTENTRY"] if line["DOCHDRID"] == doc_id]


def made_from(data: CompanyData, doc_id: str) -> list[Record]:
    """The documents converted from `doc_id`."""
    return [document for document in data.records["SODOCUMENT"] if document.get("CREATEDFROM") == doc_id]


def converted_line_keys(data: CompanyData, doc_id: str) -> set[str]:
    """The RECORDNOs of the source's lines that documents made from it name."""
    return {
        line[SOURCE_LINE_KEY]
        for document in made_from(data, doc_id)
        for line in lines_of(data, document["DOCID"])
        if line.get(SOURCE_LINE_KEY)
    }


def refresh_source_state(data: CompanyData, source: Record, stamp: str) -> None:
    """The source's state after a conversion (or the deletion of a document made from it): Converted when
    every line is converted or a document took the whole of it (no sourcelinekey), Partially Converted
    when some lines are, and its state before any conversion when no document made from it is left."""
    documents = made_from(data, source["DOCID"])
    if not documents:
        previous = source.pop(STATE_BEFORE_CONVERSION, None)
        if previous is not None:
            source["STATE"] = previous
            source["WHENMODIFIED"] = stamp
        return
    source.setdefault(STATE_BEFORE_CONVERSION, source["STATE"])
    whole = any(
        not any(line.get(SOURCE_LINE_KEY) for line in lines_of(data, document["DOCID"]))
        for document in documents
    )
    every_line = {line["RECORDNO"] for line in lines_of(data, source["DOCID"])}
    converted = whole or every_line <= converted_line_keys(data, source["DOCID"])
    source["STATE"] = CONVERTED if converted else PARTIALLY_CONVERTED
    source["WHENMODIFIED"] = stamp
