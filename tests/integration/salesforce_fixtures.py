"""Fixtures for the Salesforce sandbox over HTTPS with a throw-away CA and a generated JWT key.

`salesforce_sandbox` runs one sandbox for the test session; `salesforce` resets it (seed org, no faults,
no deliveries, counts zero) and hands it to a test; `start_salesforce(**options)` starts a dedicated
sandbox (e.g. another time_factor) stopped after the test. Register with `pytest_plugins`.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
import trustme
from requests.adapters import HTTPAdapter

from sandbox.salesforce.admin_client import SalesforceAdminClient
from sandbox.salesforce.oauth import create_jwt_signing_key
from sandbox.salesforce.server import (
    SalesforceSandbox,
    SalesforceSandboxCredentials,
    start_salesforce_sandbox,
)


class SalesforceLoginRouting(HTTPAdapter):
    """Sends requests for *.salesforce.com (simple-salesforce's fixed login hosts) to the sandbox."""

    def __init__(self, instance_url: str) -> None:
        super().__init__()
        self.instance_url = instance_url

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        parts = urlsplit(request.url or "")
        if parts.hostname and parts.hostname.endswith(".salesforce.com"):
            request.url = self.instance_url + parts.path + (f"?{parts.query}" if parts.query else "")
        return super().send(request, **kwargs)


@dataclass(frozen=True)
class SalesforceSandboxHandle:
    """What tests need to reach the sandbox: URLs, credentials, the CA and JWT key files, an admin client."""

    instance_url: str
    token_url: str
    admin_url: str
    api_version: str
    credentials: SalesforceSandboxCredentials
    ca_file: Path
    jwt_private_key_file: Path
    jwt_private_key_pem: str
    admin: SalesforceAdminClient
    server: SalesforceSandbox

    def requests_session(self) -> requests.Session:
        """A requests session that trusts the sandbox CA and routes *.salesforce.com logins to it."""
        session = requests.Session()
        session.verify = str(self.ca_file)
        session.trust_env = False  # REQUESTS_CA_BUNDLE would otherwise override session.verify
        session.mount("https://", SalesforceLoginRouting(self.instance_url))
        return session

    def stack_settings(self) -> Mapping[str, str]:
        """The "salesforce" entry of .local/stack.json for this sandbox."""
        return {
            "instance_url": self.instance_url,
            "token_url": self.token_url,
            "client_id": self.credentials.client_id,
            "client_secret": self.credentials.client_secret,
            "org_id": self.credentials.org_id,
            "api_version": self.api_version,
            "ca_file": str(self.ca_file),
            "admin_url": self.admin_url,
            "username": self.credentials.username,
            "integration_user_id": self.credentials.integration_user_id,
            "jwt_private_key_file": str(self.jwt_private_key_file),
        }


@dataclass(frozen=True)
class SandboxTls:
    server_context: ssl.SSLContext
    ca_file: Path


def make_sandbox_tls(directory: Path) -> SandboxTls:
    """A CA (written to directory/ca.pem) and a server context for 127.0.0.1 signed by it."""
    ca = trustme.CA(organization_name="sfintacct salesforce sandbox tests")
    certificate = ca.issue_cert("127.0.0.1", "localhost")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    certificate.configure_cert(context)
    ca_file = directory / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return SandboxTls(context, ca_file)


def write_private_file(path: Path, content: str) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(content)


def start_sandbox_handle(directory: Path, **options: Any) -> SalesforceSandboxHandle:
    """Start a sandbox with fresh TLS material and credentials in `directory` (stop it via handle.server)."""
    tls = make_sandbox_tls(directory)
    key = create_jwt_signing_key()
    key_file = directory / "jwt-private-key.pem"
    write_private_file(key_file, key.private_key_pem)
    credentials = SalesforceSandboxCredentials.generate(key.certificate_pem)
    server = start_salesforce_sandbox(ssl_context=tls.server_context, credentials=credentials, **options)
    return SalesforceSandboxHandle(
        instance_url=server.instance_url,
        token_url=server.token_url,
        admin_url=server.admin_url,
        api_version=server.api_version,
        credentials=credentials,
        ca_file=tls.ca_file,
        jwt_private_key_file=key_file,
        jwt_private_key_pem=key.private_key_pem,
        admin=SalesforceAdminClient(server.admin_url, tls.ca_file),
        server=server,
    )


@pytest.fixture(scope="session")
def salesforce_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SalesforceSandboxHandle]:
    """One Salesforce sandbox on a free port for the whole test session."""
    handle = start_sandbox_handle(tmp_path_factory.mktemp("salesforce-sandbox"))
    try:
        yield handle
    finally:
        handle.server.stop()


@pytest.fixture
def salesforce(salesforce_sandbox: SalesforceSandboxHandle) -> SalesforceSandboxHandle:
    """The session's sandbox, reset to the seed org (no faults, deliveries or counts) for this test."""
    salesforce_sandbox.admin.reset()
    return salesforce_sandbox


@pytest.fixture
def start_salesforce(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., SalesforceSandboxHandle]]:
    """Start dedicated sandboxes with start_salesforce_sandbox options; they stop after the test."""
    started: list[SalesforceSandboxHandle] = []

    def start(**options: Any) -> SalesforceSandboxHandle:
        handle = start_sandbox_handle(tmp_path_factory.mktemp("salesforce-sandbox"), **options)
        started.append(handle)
        return handle

    yield start
    for handle in started:
        handle.server.stop()
