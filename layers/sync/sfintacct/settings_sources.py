"""Shared pieces of loading settings: a JSON secret from Secrets Manager and readable validation errors."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.parameters.exceptions import TransformParameterError
from pydantic import ValidationError

SECRET_CACHE_SECONDS = 300


def read_json_secret(secret_arn: str, what: str, error_type: type[Exception]) -> dict[str, Any]:
    """The secret as a dict (cached five minutes); `error_type` when it is not a JSON object.

    Powertools' GetParameterError (secret missing, no access, AWS unreachable) propagates unchanged.
    """
    try:
        secret = parameters.get_secret(secret_arn, transform="json", max_age=SECRET_CACHE_SECONDS)
    except TransformParameterError:
        raise error_type(f"The {what} secret is not a JSON object") from None
    if not isinstance(secret, dict):
        raise error_type(f"The {what} secret is not a JSON object")
    return secret


def forget_secrets() -> None:
    """The next read of any secret goes to Secrets Manager (after the secret may have been fixed)."""
    parameters.clear_caches()  # type: ignore[no-untyped-call]  # Powertools leaves it unannotated


def secret_named_by(
    environ: Mapping[str, str], variable: str, what: str, error_type: type[Exception]
) -> dict[str, Any]:
    """The JSON secret whose ARN is in `variable`; `error_type` when the variable is unset."""
    secret_arn = environ.get(variable, "").strip()
    if not secret_arn:
        raise error_type(f"{variable} is not set")
    return read_json_secret(secret_arn, what, error_type)


def merged_values(
    secret: Mapping[str, Any],
    secret_fields: tuple[str, ...],
    environ: Mapping[str, str],
    environment_fields: Mapping[str, str],
) -> dict[str, Any]:
    """Non-empty secret fields, then non-empty environment variables on top (the environment wins)."""
    values: dict[str, Any] = {key: secret[key] for key in secret_fields if secret.get(key) not in (None, "")}
    for variable, field in environment_fields.items():
        if environ.get(variable, "").strip():
            values[field] = environ[variable].strip()
    return values


def validation_problems(error: ValidationError) -> str:
    """What is wrong, field by field, without the values (they may be secrets)."""
    return "; ".join(
        f"{'.'.join(str(part) for part in item['loc']) or 'settings'}: {item['msg']}"
        for item in error.errors(include_input=False, include_url=False)
    )
