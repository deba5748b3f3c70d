"""The local API over HTTPS and with mutual TLS, as an API Gateway custom domain with a truststore.

Only a client with a certificate from the truststore's CA gets through the TLS handshake; its
certificate reaches the handler as `requestContext.identity.clientCert`, the way API Gateway passes it
to a REST API proxy integration. Nothing here leaves 127.0.0.1.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509

from sandbox.local_api import LocalApi, start_local_api
from sandbox.tls import LocalClientCa, LocalClientCertificate, LocalTls, create_client_ca, create_local_tls

pytestmark = pytest.mark.integration


@dataclass
class Recorded:
    events: list[dict[str, Any]]

    def handler(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        self.events.append(event)
        return {"statusCode": 200, "headers": {"Content-Type": "text/plain"}, "body": "ok"}


@dataclass(frozen=True)
class Certificates:
    server: LocalTls
    client_ca: LocalClientCa
    trusted: LocalClientCertificate
    other_ca: LocalClientCa
    untrusted: LocalClientCertificate


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    directory = tmp_path_factory.mktemp("local-api-tls")
    client_ca = create_client_ca(directory / "client-ca", "Outbound client CA (local)")
    other_ca = create_client_ca(directory / "other-ca", "Somebody else's CA")
    return Certificates(
        server=create_local_tls(directory / "server"),
        client_ca=client_ca,
        trusted=client_ca.issue(
            "salesforce",
            common_name="proxy.salesforce.local",
            organization_name="Salesforce, Inc.",
            organization_unit_name="Outbound",
        ),
        other_ca=other_ca,
        untrusted=other_ca.issue("impostor", common_name="proxy.salesforce.local"),
    )


@pytest.fixture
def mutual_tls_api(certificates: Certificates) -> Iterator[tuple[LocalApi, Recorded]]:
    recorded = Recorded([])
    api = start_local_api(
        recorded.handler, port=0, tls=certificates.server, client_ca_file=certificates.client_ca.ca_file
    )
    try:
        yield api, recorded
    finally:
        api.stop()


def _post(api: LocalApi, verify: ssl.SSLContext) -> httpx.Response:
    with httpx.Client(verify=verify, timeout=10) as client:
        return client.post(f"{api.url}/salesforce/outbound", content=b"<x/>", headers={"User-Agent": "probe"})


def test_https_without_a_client_ca_serves_everyone_and_passes_no_certificate(
    certificates: Certificates,
) -> None:
    recorded = Recorded([])
    api = start_local_api(recorded.handler, port=0, tls=certificates.server)
    try:
        response = _post(api, certificates.server.client_context())
    finally:
        api.stop()

    assert api.url.startswith("https://127.0.0.1:")
    assert response.status_code == 200
    [event] = recorded.events
    assert "clientCert" not in event["requestContext"]["identity"]
    assert event["headers"]["X-Forwarded-Proto"] == "https"


def test_without_a_client_certificate_the_handshake_fails_and_the_handler_never_runs(
    mutual_tls_api: tuple[LocalApi, Recorded], certificates: Certificates
) -> None:
    api, recorded = mutual_tls_api

    with pytest.raises(httpx.TransportError):
        _post(api, certificates.server.client_context())

    assert _handshake_failures_reach(api, 1)
    assert recorded.events == []


def test_a_certificate_from_another_ca_fails_the_handshake(
    mutual_tls_api: tuple[LocalApi, Recorded], certificates: Certificates
) -> None:
    api, recorded = mutual_tls_api

    with pytest.raises(httpx.TransportError):
        _post(api, certificates.untrusted.client_context(certificates.server.ca_file))

    assert _handshake_failures_reach(api, 1)
    assert recorded.events == []


def test_a_trusted_certificate_reaches_the_handler_as_api_gateway_describes_it(
    mutual_tls_api: tuple[LocalApi, Recorded], certificates: Certificates
) -> None:
    api, recorded = mutual_tls_api

    response = _post(api, certificates.trusted.client_context(certificates.server.ca_file))

    assert response.status_code == 200
    [event] = recorded.events
    identity = event["requestContext"]["identity"]
    assert identity["sourceIp"] == "127.0.0.1"
    assert identity["userAgent"] == "probe"
    sent = x509.load_pem_x509_certificate(Path(certificates.trusted.cert_file).read_bytes())
    client_cert = identity["clientCert"]
    assert x509.load_pem_x509_certificate(client_cert["clientCertPem"].encode()) == sent
    assert client_cert["subjectDN"] == "O=Salesforce\\, Inc.,OU=Outbound,CN=proxy.salesforce.local"
    assert client_cert["issuerDN"].startswith("O=Outbound client CA (local),OU=")
    assert int(client_cert["serialNumber"].replace(":", ""), 16) == sent.serial_number
    assert client_cert["validity"]["notAfter"].endswith(f"{sent.not_valid_after_utc:%H:%M:%S %Y} GMT")
    assert api.handshake_failures == 0


def test_a_client_certificate_header_is_just_a_header(
    mutual_tls_api: tuple[LocalApi, Recorded], certificates: Certificates
) -> None:
    api, recorded = mutual_tls_api

    with httpx.Client(verify=certificates.trusted.client_context(certificates.server.ca_file)) as client:
        client.post(f"{api.url}/x", headers={"clientCert": "CN=forged", "X-Client-Cert": "CN=forged"})

    [event] = recorded.events
    assert event["requestContext"]["identity"]["clientCert"]["subjectDN"].endswith(
        "CN=proxy.salesforce.local"
    )


def test_mutual_tls_needs_a_server_certificate(certificates: Certificates) -> None:
    with pytest.raises(ValueError, match="server certificate"):
        start_local_api(Recorded([]).handler, port=0, client_ca_file=certificates.client_ca.ca_file)


def _handshake_failures_reach(api: LocalApi, expected: int, timeout: float = 10.0) -> bool:
    """With TLS 1.3 the client may see the refusal before the server's thread has counted it."""
    deadline = time.monotonic() + timeout
    while api.handshake_failures < expected and time.monotonic() < deadline:
        time.sleep(0.02)
    return api.handshake_failures == expected
