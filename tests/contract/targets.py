"""Where the contract suite runs: the local sandboxes, or a real Intacct company and Salesforce org.

Each side is chosen on its own from SFINTACCT_CONTRACT_* environment variables:

- none of a side's variables set: that side runs against its local sandbox;
- all of its required variables set: that side runs against the real service;
- some set, or an unknown SFINTACCT_CONTRACT_<SIDE>_* name: ContractSetupError naming what is wrong.

Settings are validated by the project's own settings models, so an error names the setting, never its value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from sfintacct.intacct.errors import IntacctSettingsError
from sfintacct.intacct.settings import IntacctSettings
from sfintacct.intacct.settings import settings_from_sources as intacct_settings_from_sources
from sfintacct.salesforce.errors import SalesforceSettingsError
from sfintacct.salesforce.settings import SalesforceSettings
from sfintacct.salesforce.settings import settings_from_sources as salesforce_settings_from_sources

INTACCT_PREFIX = "SFINTACCT_CONTRACT_INTACCT_"
SALESFORCE_PREFIX = "SFINTACCT_CONTRACT_SALESFORCE_"

# Variable -> what it holds. Required ones first; the order is the order of error messages.
INTACCT_REQUIRED = {
    f"{INTACCT_PREFIX}SENDER_ID": "Web Services sender ID",
    f"{INTACCT_PREFIX}SENDER_PASSWORD": "Web Services sender password",
    f"{INTACCT_PREFIX}COMPANY_ID": "company ID",
    f"{INTACCT_PREFIX}USER_ID": "Web Services user",
    f"{INTACCT_PREFIX}USER_PASSWORD": "password of that user",
    f"{INTACCT_PREFIX}ITEM_ID": "ITEMID of an active item the test order may use",
}
INTACCT_OPTIONAL = {
    f"{INTACCT_PREFIX}ENTITY": "entity (location ID) of a multi-entity company",
    f"{INTACCT_PREFIX}TRANSACTION_TYPE": "Order Entry transaction definition, default Sales Order",
}
SALESFORCE_REQUIRED = {
    f"{SALESFORCE_PREFIX}LOGIN_URL": "https://login.salesforce.com, https://test.salesforce.com or My Domain",
    f"{SALESFORCE_PREFIX}CLIENT_ID": "consumer key of the connected app (JWT bearer flow)",
    f"{SALESFORCE_PREFIX}USERNAME": "the integration user",
    f"{SALESFORCE_PREFIX}PRIVATE_KEY_FILE": "PEM file of the key whose certificate the connected app holds",
}
SALESFORCE_OPTIONAL = {
    f"{SALESFORCE_PREFIX}API_VERSION": "REST API version, default that of the project's client",
    f"{SALESFORCE_PREFIX}JWT_AUDIENCE": "JWT `aud`, default derived from the login URL by the client",
}
# Optional variable -> the project's own environment variable for that setting.
_SALESFORCE_SETTING_VARIABLES = {
    f"{SALESFORCE_PREFIX}API_VERSION": "SALESFORCE_API_VERSION",
    f"{SALESFORCE_PREFIX}JWT_AUDIENCE": "SALESFORCE_JWT_AUDIENCE",
}

DEFAULT_TRANSACTION_TYPE = "Sales Order"


class ContractSetupError(Exception):
    """The SFINTACCT_CONTRACT_* variables do not describe a usable target."""


@dataclass(frozen=True)
class IntacctTarget:
    """The Intacct company the contract tests write to, and what they need from it."""

    settings: IntacctSettings
    item_id: str
    transaction_type: str
    real: bool

    def describe(self) -> str:
        if not self.real:
            return "the local Intacct sandbox"
        entity = f", entity {self.settings.entity_id}" if self.settings.entity_id else ""
        return f"Intacct company {self.settings.company_id}{entity} as {self.settings.user_id}"


@dataclass(frozen=True)
class SalesforceTarget:
    """The Salesforce org the contract tests write to."""

    settings: SalesforceSettings
    real: bool

    def describe(self) -> str:
        if not self.real:
            return "the local Salesforce sandbox"
        return f"Salesforce org at {self.settings.login_url} as {self.settings.username}"


def intacct_target_from_environment(environ: Mapping[str, str]) -> IntacctTarget | None:
    """The real Intacct company named by the environment, or None when no Intacct variable is set."""
    values = _side_values(environ, INTACCT_PREFIX, INTACCT_REQUIRED, INTACCT_OPTIONAL, "Intacct")
    if values is None:
        return None
    secret = {
        "sender_id": values[f"{INTACCT_PREFIX}SENDER_ID"],
        "sender_password": values[f"{INTACCT_PREFIX}SENDER_PASSWORD"],
        "company_id": values[f"{INTACCT_PREFIX}COMPANY_ID"],
        "user_id": values[f"{INTACCT_PREFIX}USER_ID"],
        "user_password": values[f"{INTACCT_PREFIX}USER_PASSWORD"],
        "entity_id": values.get(f"{INTACCT_PREFIX}ENTITY"),
    }
    try:
        settings = intacct_settings_from_sources(secret, {})
    except IntacctSettingsError as error:
        raise ContractSetupError(f"{error} (from the {INTACCT_PREFIX}* variables)") from None
    return IntacctTarget(
        settings=settings,
        item_id=values[f"{INTACCT_PREFIX}ITEM_ID"],
        transaction_type=values.get(f"{INTACCT_PREFIX}TRANSACTION_TYPE") or DEFAULT_TRANSACTION_TYPE,
        real=True,
    )


def salesforce_target_from_environment(environ: Mapping[str, str]) -> SalesforceTarget | None:
    """The real Salesforce org named by the environment, or None when no Salesforce variable is set."""
    values = _side_values(environ, SALESFORCE_PREFIX, SALESFORCE_REQUIRED, SALESFORCE_OPTIONAL, "Salesforce")
    if values is None:
        return None
    key_variable = f"{SALESFORCE_PREFIX}PRIVATE_KEY_FILE"
    key_path = Path(values[key_variable]).expanduser()
    try:
        private_key = key_path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else type(error).__name__
        raise ContractSetupError(f"{key_variable}: cannot read the key file ({reason})") from None
    if "PRIVATE KEY" not in private_key:
        raise ContractSetupError(f"{key_variable}: the file is not a PEM private key")
    secret = {
        "auth_flow": "jwt_bearer",
        "login_url": values[f"{SALESFORCE_PREFIX}LOGIN_URL"],
        "client_id": values[f"{SALESFORCE_PREFIX}CLIENT_ID"],
        "username": values[f"{SALESFORCE_PREFIX}USERNAME"],
        "private_key": private_key,
    }
    environment = {
        setting: values[variable]
        for variable, setting in _SALESFORCE_SETTING_VARIABLES.items()
        if variable in values
    }
    try:
        settings = salesforce_settings_from_sources(secret, environment)
    except SalesforceSettingsError as error:
        raise ContractSetupError(f"{error} (from the {SALESFORCE_PREFIX}* variables)") from None
    return SalesforceTarget(settings=settings, real=True)


def _side_values(
    environ: Mapping[str, str],
    prefix: str,
    required: Mapping[str, str],
    optional: Mapping[str, str],
    side: str,
) -> dict[str, str] | None:
    """The non-empty variables of one side; None when there are none; ContractSetupError when incomplete."""
    known = [*required, *optional]
    unknown = sorted(name for name in environ if name.startswith(prefix) and name not in known)
    if unknown:
        raise ContractSetupError(
            f"Unknown {side} contract variable(s): {', '.join(unknown)}. Known: {', '.join(known)}."
        )
    values = {name: environ[name].strip() for name in known if environ.get(name, "").strip()}
    if not values:
        return None
    missing = [name for name in required if name not in values]
    if missing:
        details = "; ".join(f"{name} ({required[name]})" for name in missing)
        raise ContractSetupError(
            f"To run the contract tests against a real {side}, also set: {details}. "
            f"Or unset every {prefix}* variable to use the local {side} sandbox."
        )
    return values
