"""SOAP 1.1 answers to Salesforce Outbound Messages: the acknowledgement and faults."""

from __future__ import annotations

from xml.sax.saxutils import escape

from sfintacct.intake.errors import FaultCode

SOAP_ENVELOPE_NAMESPACE = "http://schemas.xmlsoap.org/soap/envelope/"
OUTBOUND_NAMESPACE = "http://soap.sforce.com/2005/09/outbound"
SOAP_CONTENT_TYPE = "text/xml"
MAX_FAULT_STRING_LENGTH = 1000

# The acknowledgement Salesforce expects (HTTP 200): one Ack for every notification of the message.
ACK_RESPONSE = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    f'<soapenv:Envelope xmlns:soapenv="{SOAP_ENVELOPE_NAMESPACE}">'
    "<soapenv:Body>"
    f'<notificationsResponse xmlns="{OUTBOUND_NAMESPACE}">'
    "<Ack>true</Ack>"
    "</notificationsResponse>"
    "</soapenv:Body>"
    "</soapenv:Envelope>"
)


def soap_fault(fault_code: FaultCode, fault_string: str) -> str:
    """A SOAP 1.1 fault envelope; `fault_code` is Client (the request is wrong) or Server."""
    text = _xml_safe(fault_string)[:MAX_FAULT_STRING_LENGTH]
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<soapenv:Envelope xmlns:soapenv="{SOAP_ENVELOPE_NAMESPACE}">'
        "<soapenv:Body>"
        "<soapenv:Fault>"
        f"<faultcode>soapenv:{fault_code}</faultcode>"
        f"<faultstring>{escape(text)}</faultstring>"
        "</soapenv:Fault>"
        "</soapenv:Body>"
        "</soapenv:Envelope>"
    )


def _xml_safe(text: str) -> str:
    """Drop characters XML 1.0 cannot carry (control characters, lone surrogates)."""
    return "".join(
        character
        for character in text
        if character in "\t\n\r"
        or ("\x20" <= character <= "\ud7ff")
        or ("\ue000" <= character <= "\ufffd")
        or character >= "\U00010000"
    )
