"""Where the intake's secret comes from: Secrets Manager through Powertools parameters, cached."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from pydantic import ValidationError

from sfintacct.intake.errors import SecretUnavailable
from sfintacct.intake.settings import OUTBOUND_TOKEN_KEY, OUTBOUND_TOKENS_KEY, IntakeSecret

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

SECRET_CACHE_SECONDS = 300


class IntakeSecretSource(Protocol):
    """Gives the current intake secret or raises `SecretUnavailable`."""

    def intake_secret(self) -> IntakeSecret: ...


class NoIntakeSecret:
    """No secret configured: no Outbound Message token, no event signing key.

    Outbound Messages are then accepted only with the trusted client certificate (mutual TLS).
    """

    def intake_secret(self) -> IntakeSecret:
        return IntakeSecret()


class SecretsManagerIntakeSecret:
    """Reads the JSON secret with Powertools parameters, cached per container for `max_age_seconds`.

    A change to the secret (a token added or removed) reaches a warm container only when its cached
    copy is older than that, so for up to `max_age_seconds` a container may still answer with the
    secret it read before. The Secrets Manager client is created on first use, so importing or
    constructing this is cheap.
    """

    def __init__(self, secret_arn: str, max_age_seconds: int = SECRET_CACHE_SECONDS) -> None:
        self._secret_arn = secret_arn
        self._max_age_seconds = max_age_seconds
        self._provider: SecretsProvider | None = None

    def intake_secret(self) -> IntakeSecret:
        # Imported here: only the first call in a container pays for boto3 and the client.
        from aws_lambda_powertools.utilities.parameters import SecretsProvider  # noqa: PLC0415
        from aws_lambda_powertools.utilities.parameters.exceptions import (  # noqa: PLC0415
            GetParameterError,
            TransformParameterError,
        )
        from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

        try:
            if self._provider is None:
                self._provider = SecretsProvider()
            value = self._provider.get(self._secret_arn, transform="json", max_age=self._max_age_seconds)
        except TransformParameterError:
            raise SecretUnavailable("the intake secret is not valid JSON") from None
        except (GetParameterError, BotoCoreError, ClientError) as error:
            raise SecretUnavailable(f"the intake secret could not be read ({type(error).__name__})") from None
        if not isinstance(value, dict):
            raise SecretUnavailable("the intake secret must be a JSON object")
        try:
            return IntakeSecret.model_validate(value)
        except ValidationError as error:
            keys = sorted(
                {str(detail["loc"][0]) for detail in error.errors(include_input=False) if detail["loc"]}
            )
            raise SecretUnavailable(
                f"the intake secret has a wrong value for {', '.join(keys) or 'a key'}: "
                f"{OUTBOUND_TOKENS_KEY} must be a list of strings, {OUTBOUND_TOKEN_KEY} and "
                "event_signing_key strings"
            ) from None
