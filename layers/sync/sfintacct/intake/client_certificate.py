"""Mutual TLS: the client certificate API Gateway verified, and the one the intake trusts.

With mutual TLS on an API Gateway custom domain, API Gateway checks the client's certificate chain
against the domain's truststore during the TLS handshake and, for a REST API proxy integration, passes
what it saw to the function as `requestContext.identity.clientCert`:

    {"clientCertPem": "-----BEGIN CERTIFICATE-----...", "subjectDN": "...", "issuerDN": "...",
     "serialNumber": "...", "validity": {"notBefore": "...", "notAfter": "..."}}

A chain that verifies proves only that some certificate authority in the truststore issued it; when that
is a public authority, anyone can buy a certificate from it. So the intake accepts a certificate only when
it names the subject it is configured to trust (and, where configured, the issuer and a serial number).
The event's `requestContext` is written by API Gateway, never by the client, so no request header can
stand in for a certificate.

Distinguished names are compared attribute by attribute: the order of the attributes, the spacing
around separators, the case of attribute types and values, and long or short attribute names
(`commonName` or `CN`) do not matter, so a subject copied from `openssl x509 -subject`, from RFC 4514
text or from a logged request all match. Serial numbers are compared as hexadecimal, with or without
colons or leading zeros.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

# Long attribute names (as Python's ssl module and some tools print them) and their short forms.
_ATTRIBUTE_ALIASES = {
    "COMMONNAME": "CN",
    "ORGANIZATIONNAME": "O",
    "ORGANIZATIONALUNITNAME": "OU",
    "COUNTRYNAME": "C",
    "STATEORPROVINCENAME": "ST",
    "S": "ST",
    "LOCALITYNAME": "L",
    "STREETADDRESS": "STREET",
    "EMAILADDRESS": "EMAILADDRESS",
    "E": "EMAILADDRESS",
    "DOMAINCOMPONENT": "DC",
    "USERID": "UID",
    "SERIALNUMBER": "SERIALNUMBER",
}
MAX_SHOWN = 200


class InvalidDistinguishedName(ValueError):
    """The text is not a distinguished name (`TYPE=value` pairs separated by commas)."""


DistinguishedName = frozenset[tuple[str, str]]


def parse_distinguished_name(text: str) -> DistinguishedName:
    """The attributes of a DN as a set of (TYPE, value) pairs, normalised for comparison.

    Accepts `CN=a,O=b`, `CN = a, O = b`, `/C=US/O=b/CN=a` (OpenSSL's legacy form) and RFC 4514
    escapes (`O=Acme\\, Inc.`).
    """
    stripped = text.strip()
    if stripped.startswith("/"):
        parts = [part for part in stripped.split("/") if part.strip()]
    else:
        parts = list(_split_unescaped(stripped, ",+;"))
    attributes: set[tuple[str, str]] = set()
    for part in parts:
        name, separator, value = part.partition("=")
        name = name.strip().upper().replace(" ", "")
        if not separator or not name:
            raise InvalidDistinguishedName(f"{_shown(text)} is not a distinguished name (TYPE=value, ...)")
        attributes.add((_ATTRIBUTE_ALIASES.get(name, name), _normalise_value(value)))
    if not attributes:
        raise InvalidDistinguishedName("the distinguished name is empty")
    return frozenset(attributes)


def normalise_serial_number(text: str) -> str:
    """A serial number as lower-case hexadecimal without colons, spaces or leading zeros."""
    digits = "".join(character for character in text if character not in ": \t").lower()
    if not digits or any(character not in "0123456789abcdef" for character in digits):
        raise ValueError(f"{_shown(text)} is not a hexadecimal serial number")
    return digits.lstrip("0") or "0"


@dataclass(frozen=True)
class ClientCertificate:
    """What API Gateway reports about the client certificate of a mutual TLS connection."""

    subject_dn: str
    issuer_dn: str
    serial_number: str
    not_after: str

    def log_keys(self) -> dict[str, str]:
        """Who presented it, for the logs (a certificate is public; its PEM is left out all the same)."""
        return {
            "client_cert_subject": _shown(self.subject_dn),
            "client_cert_issuer": _shown(self.issuer_dn),
            "client_cert_serial": _shown(self.serial_number),
            "client_cert_not_after": _shown(self.not_after),
        }


def client_certificate_from_identity(identity: object) -> ClientCertificate | None:
    """The `clientCert` of a REST API event's `requestContext.identity`, or None when there is none."""
    if not isinstance(identity, Mapping):
        return None
    certificate = identity.get("clientCert")
    if not isinstance(certificate, Mapping):
        return None
    validity = certificate.get("validity")
    not_after = validity.get("notAfter") if isinstance(validity, Mapping) else None
    return ClientCertificate(
        subject_dn=_text(certificate.get("subjectDN")),
        issuer_dn=_text(certificate.get("issuerDN")),
        serial_number=_text(certificate.get("serialNumber")),
        not_after=_text(not_after),
    )


@dataclass(frozen=True)
class TrustedClientCertificate:
    """The certificate Outbound Messages may come with: a subject, optionally an issuer and serials."""

    subject: DistinguishedName
    issuer: DistinguishedName | None = None
    serial_numbers: frozenset[str] = frozenset()

    @classmethod
    def from_settings(
        cls, subject: str, issuer: str | None = None, serial_numbers: Iterable[str] = ()
    ) -> TrustedClientCertificate:
        """Raises ValueError (InvalidDistinguishedName is one) for a setting that cannot be parsed."""
        return cls(
            subject=parse_distinguished_name(subject),
            issuer=parse_distinguished_name(issuer) if issuer else None,
            serial_numbers=frozenset(normalise_serial_number(serial) for serial in serial_numbers),
        )

    def problem_with(self, certificate: ClientCertificate) -> str | None:
        """None when `certificate` is the trusted one, else which part of it differs."""
        for part, expected, presented in (
            ("subject", self.subject, certificate.subject_dn),
            ("issuer", self.issuer, certificate.issuer_dn),
        ):
            if expected is None:
                continue
            try:
                if parse_distinguished_name(presented) != expected:
                    return f"its {part} is not the trusted one"
            except InvalidDistinguishedName:
                return f"its {part} is not a distinguished name"
        if self.serial_numbers:
            try:
                serial = normalise_serial_number(certificate.serial_number)
            except ValueError:
                return "its serial number is not hexadecimal"
            if serial not in self.serial_numbers:
                return "its serial number is not a trusted one"
        return None


def _split_unescaped(text: str, separators: str) -> Iterable[str]:
    """Split at separators not preceded by a backslash and not inside double quotes."""
    current: list[str] = []
    escaped = quoted = False
    for character in text:
        if escaped:
            current.append("\\" + character)
            escaped = False
        elif character == "\\":
            escaped = True
        elif character == '"':
            quoted = not quoted
            current.append(character)
        elif character in separators and not quoted:
            yield "".join(current)
            current = []
        else:
            current.append(character)
    if escaped:
        current.append("\\")
    if "".join(current).strip():
        yield "".join(current)


def _normalise_value(value: str) -> str:
    """Unescape, drop surrounding quotes, collapse spaces and fold case."""
    text = value.strip()
    if len(text) >= 2 and text.startswith('"') and text.endswith('"'):
        text = text[1:-1]
    unescaped: list[str] = []
    characters = iter(text)
    for character in characters:
        if character == "\\":
            following = next(characters, "")
            hexadecimal = following + next(characters, "") if following in "0123456789abcdefABCDEF" else ""
            if len(hexadecimal) == 2 and all(c in "0123456789abcdefABCDEF" for c in hexadecimal):
                unescaped.append(chr(int(hexadecimal, 16)))
            else:
                unescaped.append(hexadecimal or following)
        else:
            unescaped.append(character)
    return " ".join("".join(unescaped).split()).casefold()


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _shown(text: str) -> str:
    shown = "".join(character if character.isprintable() else "?" for character in text[:MAX_SHOWN])
    return shown + ("..." if len(text) > MAX_SHOWN else "")
