"""Choosing the contract targets from SFINTACCT_CONTRACT_* variables: sandbox, real, or a clear error."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.contract.targets import (
    INTACCT_REQUIRED,
    SALESFORCE_REQUIRED,
    ContractSetupError,
    intacct_target_from_environment,
    salesforce_target_from_environment,
)

pytestmark = pytest.mark.contract

INTACCT = {
    "SFINTACCT_CONTRACT_INTACCT_SENDER_ID": "value-sender",
    "SFINTACCT_CONTRACT_INTACCT_SENDER_PASSWORD": "value-sender-password",
    "SFINTACCT_CONTRACT_INTACCT_COMPANY_ID": "value-company",
    "SFINTACCT_CONTRACT_INTACCT_USER_ID": "value-user",
    "SFINTACCT_CONTRACT_INTACCT_USER_PASSWORD": "value-user-password",
    "SFINTACCT_CONTRACT_INTACCT_ITEM_ID": "ITEM-1",
}
FAKE_KEY = "-----BEGIN PRIVATE KEY-----\nnot a real key\n-----END PRIVATE KEY-----\n"


def salesforce_environment(key_file: Path) -> dict[str, str]:
    return {
        "SFINTACCT_CONTRACT_SALESFORCE_LOGIN_URL": "https://login.salesforce.com",
        "SFINTACCT_CONTRACT_SALESFORCE_CLIENT_ID": "consumer-key",
        "SFINTACCT_CONTRACT_SALESFORCE_USERNAME": "integration@example.com",
        "SFINTACCT_CONTRACT_SALESFORCE_PRIVATE_KEY_FILE": str(key_file),
    }


def test_no_variables_means_the_sandboxes() -> None:
    environment = {"PATH": "/usr/bin", "SFINTACCT_CONTRACT_INTACCT_ENTITY": "  "}

    assert intacct_target_from_environment(environment) is None
    assert salesforce_target_from_environment(environment) is None


def test_every_required_intacct_variable_gives_a_real_target() -> None:
    target = intacct_target_from_environment({**INTACCT, "SFINTACCT_CONTRACT_INTACCT_ENTITY": "US"})

    assert target is not None
    assert target.real
    assert (target.settings.company_id, target.settings.user_id, target.settings.entity_id) == (
        "value-company",
        "value-user",
        "US",
    )
    assert target.settings.endpoint_url == "https://api.intacct.com/ia/xml/xmlgw.phtml"
    assert target.settings.user_password.get_secret_value() == "value-user-password"
    assert (target.item_id, target.transaction_type) == ("ITEM-1", "Sales Order")
    assert "password" not in target.describe()


def test_some_intacct_variables_name_the_missing_ones_without_values() -> None:
    environment = {key: value for key, value in INTACCT.items() if not key.endswith("PASSWORD")}

    with pytest.raises(ContractSetupError) as raised:
        intacct_target_from_environment(environment)

    message = str(raised.value)
    assert "SFINTACCT_CONTRACT_INTACCT_SENDER_PASSWORD" in message
    assert "SFINTACCT_CONTRACT_INTACCT_USER_PASSWORD" in message
    assert "SFINTACCT_CONTRACT_INTACCT_COMPANY_ID" not in message
    assert "value-" not in message


def test_an_unknown_variable_is_refused() -> None:
    with pytest.raises(ContractSetupError, match="SFINTACCT_CONTRACT_INTACCT_ENTITY_ID"):
        intacct_target_from_environment({**INTACCT, "SFINTACCT_CONTRACT_INTACCT_ENTITY_ID": "US"})


def test_every_required_salesforce_variable_gives_a_jwt_bearer_target(tmp_path: Path) -> None:
    key_file = tmp_path / "key.pem"
    key_file.write_text(FAKE_KEY)

    target = salesforce_target_from_environment(
        {**salesforce_environment(key_file), "SFINTACCT_CONTRACT_SALESFORCE_API_VERSION": "61.0"}
    )

    assert target is not None
    assert target.real
    settings = target.settings
    assert (settings.auth_flow, settings.login_url, settings.client_id, settings.username) == (
        "jwt_bearer",
        "https://login.salesforce.com",
        "consumer-key",
        "integration@example.com",
    )
    assert settings.api_version == "61.0"
    assert settings.private_key is not None
    assert settings.private_key.get_secret_value() == FAKE_KEY


def test_an_unreadable_key_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ContractSetupError, match="SFINTACCT_CONTRACT_SALESFORCE_PRIVATE_KEY_FILE"):
        salesforce_target_from_environment(salesforce_environment(tmp_path / "missing.pem"))


def test_an_invalid_login_url_is_refused_by_the_project_settings(tmp_path: Path) -> None:
    key_file = tmp_path / "key.pem"
    key_file.write_text(FAKE_KEY)
    environment = {
        **salesforce_environment(key_file),
        "SFINTACCT_CONTRACT_SALESFORCE_LOGIN_URL": "http://login.salesforce.com",
    }

    with pytest.raises(ContractSetupError, match="login_url"):
        salesforce_target_from_environment(environment)


@pytest.mark.parametrize(
    ("required", "load"),
    [
        (INTACCT_REQUIRED, intacct_target_from_environment),
        (SALESFORCE_REQUIRED, salesforce_target_from_environment),
    ],
)
def test_one_variable_alone_lists_all_the_others(required: dict[str, str], load: object) -> None:
    first, *others = required
    assert callable(load)

    with pytest.raises(ContractSetupError) as raised:
        load({first: "x"})

    assert all(name in str(raised.value) for name in others)
