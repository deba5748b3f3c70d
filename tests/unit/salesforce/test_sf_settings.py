"""Salesforce settings: secret + environment, flow inference, validation that never echoes secrets."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from aws_lambda_powertools.utilities import parameters
from moto import mock_aws

from sfintacct.salesforce.errors import SalesforceSettingsError
from sfintacct.salesforce.settings import jwt_audience_for, load_salesforce_settings, settings_from_sources

SECRET_VALUE = "do-not-print-this-secret"


def test_client_credentials_from_the_secret_with_defaults() -> None:
    settings = settings_from_sources(
        {
            "client_id": "3MVGabc",
            "client_secret": SECRET_VALUE,
            "login_url": "https://acme.my.salesforce.com/",
        },
        {},
    )

    assert settings.auth_flow == "client_credentials"
    assert settings.login_url == "https://acme.my.salesforce.com"
    assert settings.token_url == "https://acme.my.salesforce.com/services/oauth2/token"
    assert settings.api_version == "62.0"
    assert settings.ca_file is None
    assert settings.timeout_seconds > 0


def test_a_private_key_selects_the_jwt_bearer_flow_and_environment_overrides_non_secret_parts(
    tmp_path: Path,
) -> None:
    ca_file = tmp_path / "ca.pem"
    ca_file.write_text("-----BEGIN CERTIFICATE-----\n")
    settings = settings_from_sources(
        {"client_id": "3MVGabc", "private_key": "-----BEGIN PRIVATE KEY-----...", "username": "a@b.c"},
        {
            "SALESFORCE_LOGIN_URL": "https://test.salesforce.com",
            "SALESFORCE_USERNAME": "integration@acme.example",
            "SALESFORCE_API_VERSION": "64.0",
            "SALESFORCE_CA_FILE": str(ca_file),
            "SALESFORCE_TIMEOUT_SECONDS": "7.5",
            "SALESFORCE_READ_RETRIES": "0",
        },
    )

    assert settings.auth_flow == "jwt_bearer"
    assert settings.login_url == "https://test.salesforce.com"
    assert settings.username == "integration@acme.example"
    assert (settings.api_version, settings.ca_file, settings.timeout_seconds, settings.read_retries) == (
        "64.0",
        str(ca_file),
        7.5,
        0,
    )


@pytest.mark.parametrize(
    ("login_url", "audience"),
    [
        ("https://login.salesforce.com", "https://login.salesforce.com"),
        ("https://test.salesforce.com", "https://test.salesforce.com"),
        # My Domain of a production org (Developer Edition too): still the production audience.
        ("https://acme.my.salesforce.com", "https://login.salesforce.com"),
        ("https://ACME.my.salesforce.com", "https://login.salesforce.com"),
        ("https://acme-dev-ed.develop.my.salesforce.com", "https://login.salesforce.com"),
        # Sandboxes: enhanced and legacy My Domains, legacy sandbox instances, scratch orgs.
        ("https://acme--uat.sandbox.my.salesforce.com", "https://test.salesforce.com"),
        ("https://acme--uat.my.salesforce.com", "https://test.salesforce.com"),
        ("https://acme--uat.cs42.my.salesforce.com", "https://test.salesforce.com"),
        ("https://cs42.salesforce.com", "https://test.salesforce.com"),
        ("https://speed-ruby-1234.scratch.my.salesforce.com", "https://test.salesforce.com"),
        # An Experience Cloud site is its own audience.
        ("https://acme.my.site.com", "https://acme.my.site.com"),
        ("https://acme--uat.sandbox.my.site.com", "https://acme--uat.sandbox.my.site.com"),
        # Any other host, such as a local sandbox: the production audience.
        ("https://127.0.0.1:8443", "https://login.salesforce.com"),
        ("https://login.acme.example", "https://login.salesforce.com"),
    ],
)
def test_the_jwt_audience_is_derived_from_the_login_url(login_url: str, audience: str) -> None:
    settings = settings_from_sources(
        {"client_id": "3MVGabc", "private_key": "-----BEGIN PRIVATE KEY-----...", "username": "a@b.c"},
        {"SALESFORCE_LOGIN_URL": login_url},
    )

    assert jwt_audience_for(login_url) == audience
    assert settings.jwt_audience is None
    assert settings.assertion_audience == audience


def test_an_explicit_jwt_audience_wins_over_the_derived_one() -> None:
    secret = {
        "client_id": "3MVGabc",
        "private_key": "-----BEGIN PRIVATE KEY-----...",
        "username": "a@b.c",
        "login_url": "https://partners.acme.example",
        "jwt_audience": "https://test.salesforce.com",
    }

    from_secret = settings_from_sources(secret, {})
    from_environment = settings_from_sources(
        secret, {"SALESFORCE_JWT_AUDIENCE": "https://partners.acme.example/portal/"}
    )

    assert from_secret.assertion_audience == "https://test.salesforce.com"
    assert from_environment.assertion_audience == "https://partners.acme.example/portal"


def test_secrets_stay_out_of_repr() -> None:
    settings = settings_from_sources(
        {
            "client_id": "3MVGabc",
            "client_secret": SECRET_VALUE,
            "login_url": "https://acme.my.salesforce.com",
        },
        {},
    )

    assert SECRET_VALUE not in repr(settings)
    assert SECRET_VALUE not in str(settings.model_dump())


@pytest.mark.parametrize(
    ("secret", "environ", "expected"),
    [
        ({"client_id": "x", "login_url": "https://a.my.salesforce.com"}, {}, "needs client_secret"),
        (
            {"client_id": "x", "client_secret": SECRET_VALUE, "login_url": "https://a.my.salesforce.com"},
            {"SALESFORCE_AUTH_FLOW": "jwt_bearer"},
            "needs username",
        ),
        ({"client_secret": SECRET_VALUE, "login_url": "https://a.my.salesforce.com"}, {}, "client_id"),
        ({"client_id": "x", "client_secret": SECRET_VALUE, "login_url": "http://a.example"}, {}, "https URL"),
        ({"client_id": "x", "client_secret": SECRET_VALUE}, {}, "login_url"),
        (
            {"client_id": "x", "client_secret": SECRET_VALUE, "login_url": "https://a.my.salesforce.com"},
            {"SALESFORCE_JWT_AUDIENCE": "http://login.salesforce.com"},
            "jwt_audience must be https://login.salesforce.com",
        ),
        (
            {"client_id": "x", "client_secret": SECRET_VALUE, "login_url": "https://a.my.salesforce.com/x"},
            {},
            "without a path",
        ),
        (
            {"client_id": "x", "client_secret": SECRET_VALUE, "login_url": "https://a.my.salesforce.com"},
            {"SALESFORCE_API_VERSION": "v62"},
            "api_version",
        ),
        (
            {"client_id": "x", "client_secret": SECRET_VALUE, "login_url": "https://a.my.salesforce.com"},
            {"SALESFORCE_CA_FILE": "/nonexistent/ca.pem"},
            "existing CA bundle",
        ),
    ],
)
def test_invalid_settings_name_the_problem_but_never_the_secret(
    secret: dict[str, str], environ: dict[str, str], expected: str
) -> None:
    with pytest.raises(SalesforceSettingsError, match=expected) as raised:
        settings_from_sources(secret, environ)

    assert SECRET_VALUE not in str(raised.value)
    assert raised.value.__cause__ is None
    assert not raised.value.transient


@pytest.fixture
def secrets_manager() -> Iterator[None]:
    parameters.clear_caches()
    with mock_aws():
        yield
    parameters.clear_caches()


@pytest.mark.usefixtures("secrets_manager")
def test_loads_credentials_from_secrets_manager_through_powertools() -> None:
    client = boto3.client("secretsmanager", region_name="us-east-1")
    arn = client.create_secret(
        Name="sfintacct/salesforce",
        SecretString=json.dumps(
            {
                "client_id": "3MVGabc",
                "client_secret": SECRET_VALUE,
                "login_url": "https://acme.my.salesforce.com",
            }
        ),
    )["ARN"]

    settings = load_salesforce_settings({"SALESFORCE_SECRET_ARN": arn, "SALESFORCE_API_VERSION": "63.0"})

    assert settings.client_id == "3MVGabc"
    assert settings.client_secret is not None
    assert settings.client_secret.get_secret_value() == SECRET_VALUE
    assert settings.api_version == "63.0"


@pytest.mark.usefixtures("secrets_manager")
def test_a_secret_that_is_not_json_is_reported_without_its_content() -> None:
    client = boto3.client("secretsmanager", region_name="us-east-1")
    arn = client.create_secret(Name="sfintacct/broken", SecretString=SECRET_VALUE)["ARN"]

    with pytest.raises(SalesforceSettingsError, match="not a JSON object") as raised:
        load_salesforce_settings({"SALESFORCE_SECRET_ARN": arn})

    assert SECRET_VALUE not in str(raised.value)


def test_the_secret_arn_is_required() -> None:
    with pytest.raises(SalesforceSettingsError, match="SALESFORCE_SECRET_ARN"):
        load_salesforce_settings({})
