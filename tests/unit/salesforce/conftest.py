"""Fixtures of the Salesforce client unit tests: settings, an RSA key, clients wired to the fake."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sf_fake_http import LOGIN_URL, FakeSalesforceHttp

from sfintacct.salesforce import auth
from sfintacct.salesforce.client import SalesforceClient
from sfintacct.salesforce.session import build_session
from sfintacct.salesforce.settings import SalesforceSettings


@pytest.fixture(autouse=True)
def _fresh_token_cache() -> Iterator[None]:
    auth.clear_token_cache()
    yield
    auth.clear_token_cache()


@pytest.fixture(scope="session")
def rsa_key_pem() -> tuple[str, bytes]:
    """A throw-away RSA key: (private key PEM, public key PEM)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private_pem, public_pem


@pytest.fixture
def client_credentials_settings() -> SalesforceSettings:
    return SalesforceSettings(
        auth_flow="client_credentials",
        login_url=LOGIN_URL,
        client_id="3MVG9fake.client.id",
        client_secret="fake-client-secret-value",
    )


@pytest.fixture
def fake_http() -> FakeSalesforceHttp:
    return FakeSalesforceHttp()


@pytest.fixture
def make_client(
    fake_http: FakeSalesforceHttp, client_credentials_settings: SalesforceSettings
) -> Callable[..., SalesforceClient]:
    """Build a client whose session (timeouts, CA handling) talks to the fake instead of the network."""

    def make(settings: SalesforceSettings | None = None, **kwargs: Any) -> SalesforceClient:
        chosen = settings or client_credentials_settings
        session = build_session(chosen)
        session.mount("https://", fake_http)
        return SalesforceClient(chosen, session=session, **kwargs)

    return make


@pytest.fixture
def client(make_client: Callable[..., SalesforceClient]) -> SalesforceClient:
    return make_client()
