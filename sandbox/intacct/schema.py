"""Intacct's published XML API 3.0 schema (xsd/api-3.0.xsd, vendored unchanged), loaded once.

The gateway validates every request against it before running anything; the client's unit tests
validate every request the client builds against the same schema. libxml2 refuses one content model
of the file as non-deterministic; `RELAXED_ELEMENTS` lists it, and it is relaxed at load time
(xsd/README.md says why that is safe).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

from lxml import etree

SCHEMA_FILE = Path(__file__).resolve().parent / "xsd" / "api-3.0.xsd"
XS = "{http://www.w3.org/2001/XMLSchema}"
# Elements whose content model libxml2 cannot load, replaced by "any elements, not checked".
# Only readReport's <arguments>, a function the project never sends.
RELAXED_ELEMENTS = ("arguments",)


@dataclass(frozen=True)
class SchemaError:
    """One violation as libxml2 reports it: the line in the request and the message."""

    line: int
    message: str

    def __str__(self) -> str:
        return f"Error {self.line}: {self.message}"


@cache
def request_schema() -> etree.XMLSchema:
    """The schema, parsed once per process (about a tenth of a second)."""
    document = etree.parse(str(SCHEMA_FILE), etree.XMLParser(resolve_entities=False, no_network=True))
    for name in RELAXED_ELEMENTS:
        [element] = document.getroot().findall(f"{XS}element[@name='{name}']")
        complex_type = element.find(f"{XS}complexType")
        assert complex_type is not None, f"<{name}> has no complexType to relax"
        for child in list(complex_type):
            complex_type.remove(child)
        sequence = etree.SubElement(complex_type, f"{XS}sequence", minOccurs="0", maxOccurs="unbounded")
        etree.SubElement(sequence, f"{XS}any", processContents="skip")
    return etree.XMLSchema(document)


def schema_errors(body: bytes) -> list[SchemaError]:
    """Every violation of the schema in a request body; an empty list means it is valid.

    The body must already be known to be well-formed and free of DTDs (the gateway parses it with
    defusedxml first); it is parsed here again without entities or network access.
    """
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    document = etree.fromstring(body, parser)
    schema = request_schema()
    if schema.validate(document):
        return []
    return [SchemaError(error.line, error.message) for error in schema.error_log]
