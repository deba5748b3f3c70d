"""Access tokens: both OAuth flows on the wire, the per-container cache, token endpoint failures."""

from __future__ import annotations

import time
from collections.abc import Callable

import jwt
import pytest
import requests
from sf_fake_http import (
    INSTANCE_URL,
    LOGIN_URL,
    TOKEN_PATH,
    FakeSalesforceHttp,
    basic_credentials,
)

from sfintacct.salesforce.auth import build_jwt_assertion, get_access_token
from sfintacct.salesforce.client import SalesforceClient
from sfintacct.salesforce.errors import (
    SalesforceAuthenticationError,
    SalesforceSettingsError,
    TransientSalesforceError,
)
from sfintacct.salesforce.session import build_session
from sfintacct.salesforce.settings import SalesforceSettings

QUERY_PATH = "/services/data/v62.0/query/"
EMPTY_PAGE = (200, {"totalSize": 0, "done": True, "records": []})


def jwt_settings(
    private_pem: str, username: str = "integration@acme.example", **overrides: str
) -> SalesforceSettings:
    values = {
        "auth_flow": "jwt_bearer",
        "login_url": LOGIN_URL,
        "client_id": "3MVG9jwt.client",
        "username": username,
        "private_key": private_pem,
        **overrides,
    }
    return SalesforceSettings.model_validate(values)


def test_client_credentials_flow_posts_basic_auth_and_the_grant(
    fake_http: FakeSalesforceHttp, client_credentials_settings: SalesforceSettings
) -> None:
    session = build_session(client_credentials_settings)
    session.mount("https://", fake_http)

    token = get_access_token(client_credentials_settings, session)

    [call] = fake_http.requests
    assert (call.method, call.path) == ("POST", TOKEN_PATH)
    assert call.form() == {"grant_type": "client_credentials"}
    assert basic_credentials(call) == ("3MVG9fake.client.id", "fake-client-secret-value")
    assert token.instance_url == INSTANCE_URL
    assert token.value not in repr(token)


def test_jwt_bearer_flow_posts_an_rs256_assertion_salesforce_can_verify(
    fake_http: FakeSalesforceHttp, rsa_key_pem: tuple[str, bytes]
) -> None:
    private_pem, public_pem = rsa_key_pem
    settings = jwt_settings(private_pem)
    session = build_session(settings)
    session.mount("https://", fake_http)

    get_access_token(settings, session)

    [call] = fake_http.requests
    form = call.form()
    assert form["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    assert "Authorization" not in call.headers
    # A production My Domain login URL still takes the production audience.
    claims = jwt.decode(
        form["assertion"], public_pem, algorithms=["RS256"], audience="https://login.salesforce.com"
    )
    assert claims["aud"] == "https://login.salesforce.com"
    assert claims["iss"] == "3MVG9jwt.client"
    assert claims["sub"] == "integration@acme.example"
    assert 0 < claims["exp"] - time.time() <= 180
    assert jwt.get_unverified_header(form["assertion"])["alg"] == "RS256"


@pytest.mark.parametrize(
    ("overrides", "audience"),
    [
        ({"login_url": "https://acme--uat.sandbox.my.salesforce.com"}, "https://test.salesforce.com"),
        ({"login_url": "https://test.salesforce.com"}, "https://test.salesforce.com"),
        ({"login_url": "https://login.salesforce.com"}, "https://login.salesforce.com"),
        (
            {"login_url": "https://acme.my.site.com", "jwt_audience": "https://acme.my.site.com/partners/"},
            "https://acme.my.site.com/partners",
        ),
    ],
)
def test_the_assertion_audience_follows_the_org_kind_or_the_setting(
    rsa_key_pem: tuple[str, bytes], overrides: dict[str, str], audience: str
) -> None:
    private_pem, public_pem = rsa_key_pem

    assertion = build_jwt_assertion(jwt_settings(private_pem, **overrides), time.time())

    assert jwt.decode(assertion, public_pem, algorithms=["RS256"], audience=audience)["aud"] == audience


def test_a_private_key_that_is_not_a_key_is_a_settings_error(rsa_key_pem: tuple[str, bytes]) -> None:
    settings = jwt_settings("-----BEGIN PRIVATE KEY-----\nnot really\n-----END PRIVATE KEY-----\n")

    with pytest.raises(SalesforceSettingsError, match="private_key is not a usable RSA private key"):
        build_jwt_assertion(settings, time.time())


def test_token_is_cached_per_identity_across_clients(
    fake_http: FakeSalesforceHttp,
    make_client: Callable[..., SalesforceClient],
    rsa_key_pem: tuple[str, bytes],
) -> None:
    fake_http.reply("GET", QUERY_PATH, *[EMPTY_PAGE] * 5)

    make_client().query("SELECT Id FROM Account")
    make_client().query("SELECT Id FROM Account")  # a new client in the same container
    assert len(fake_http.calls("POST", TOKEN_PATH)) == 1

    make_client(jwt_settings(rsa_key_pem[0], "one@acme.example")).query("SELECT Id FROM Account")
    make_client(jwt_settings(rsa_key_pem[0], "two@acme.example")).query("SELECT Id FROM Account")
    assert len(fake_http.calls("POST", TOKEN_PATH)) == 3

    tokens_used = {call.headers["Authorization"] for call in fake_http.calls("GET", QUERY_PATH)}
    assert len(tokens_used) == 3


@pytest.mark.parametrize("error_code", ["invalid_client", "invalid_grant", "invalid_client_id"])
def test_refused_credentials_are_a_permanent_authentication_error(
    fake_http: FakeSalesforceHttp, client: SalesforceClient, error_code: str
) -> None:
    fake_http.token_replies.append(
        (400, {"error": error_code, "error_description": "authentication failure"})
    )

    with pytest.raises(SalesforceAuthenticationError) as raised:
        client.query("SELECT Id FROM Account")

    assert raised.value.error_codes == (error_code,)
    assert "authentication failure" in str(raised.value)
    assert "fake-client-secret-value" not in str(raised.value)
    assert not raised.value.transient
    assert fake_http.calls("GET", QUERY_PATH) == []


@pytest.mark.parametrize(
    "reply",
    [
        (503, {"error": "server_error"}),
        (400, {"error": "unknown_error", "error_description": "retry your request"}),
        (200, {"token_type": "Bearer"}),
        requests.ConnectionError("connection refused"),
        requests.ReadTimeout("read timed out"),
    ],
)
def test_token_endpoint_outages_are_transient(
    fake_http: FakeSalesforceHttp, client: SalesforceClient, reply: tuple[int, object] | Exception
) -> None:
    fake_http.token_replies.append(reply)

    with pytest.raises(TransientSalesforceError, match=r"[Tt]oken"):
        client.query("SELECT Id FROM Account")

    # Nothing was cached: the next call gets a token and works.
    fake_http.reply("GET", QUERY_PATH, EMPTY_PAGE)
    assert client.query("SELECT Id FROM Account") == []
