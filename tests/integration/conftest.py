"""Integration fixtures: the Intacct sandbox over HTTPS with a throw-away CA.

`intacct_sandbox` runs one sandbox for the test session; `intacct` resets it and hands it to a test.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme

from sandbox.intacct.admin_client import IntacctAdminClient
from sandbox.intacct.server import IntacctSandbox, IntacctSandboxCredentials, start_intacct_sandbox


@dataclass(frozen=True)
class IntacctSandboxHandle:
    """What tests need to reach the sandbox: URLs, credentials, the CA file and an admin client."""

    gateway_url: str
    session_url: str
    admin_url: str
    credentials: IntacctSandboxCredentials
    ca_file: Path
    admin: IntacctAdminClient
    server: IntacctSandbox


@pytest.fixture(scope="session")
def intacct_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IntacctSandboxHandle]:
    """One Intacct sandbox on a free port for the whole test session."""
    ca = trustme.CA()
    certificate = ca.issue_cert("127.0.0.1")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    certificate.configure_cert(context)
    ca_file = tmp_path_factory.mktemp("intacct-tls") / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    server = start_intacct_sandbox(ssl_context=context, credentials=IntacctSandboxCredentials.generate())
    try:
        yield IntacctSandboxHandle(
            gateway_url=server.gateway_url,
            session_url=server.session_url,
            admin_url=server.admin_url,
            credentials=server.credentials,
            ca_file=ca_file,
            admin=IntacctAdminClient(server.admin_url, ca_file),
            server=server,
        )
    finally:
        server.stop()


@pytest.fixture
def intacct(intacct_sandbox: IntacctSandboxHandle) -> IntacctSandboxHandle:
    """The session's sandbox, reset to its seed data (no faults, sessions or counts) for this test."""
    intacct_sandbox.admin.reset()
    return intacct_sandbox
