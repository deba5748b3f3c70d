"""The intake service for the current environment, built once per configuration and reused.

A Lambda container keeps one service (and so one SQS client and one secret cache) for its life;
the cache key includes the AWS endpoint variables so a test process can point at several local
stacks in turn.

Cold-start check: before a container keeps its service, the service must be able to accept an
Outbound Message from somebody, i.e. the intake secret holds a token or mutual TLS is configured.
Otherwise `intake_service` raises `IntakeMisconfigured` naming the missing secret key, on the first
request and on every later one (nothing is kept), until the configuration is fixed: an intake deployed
without a way to authenticate Salesforce fails at once and says why, instead of taking anyone's
messages.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from sfintacct.intake.intake_secret import IntakeSecretSource, NoIntakeSecret, SecretsManagerIntakeSecret
from sfintacct.intake.service import IntakeService
from sfintacct.intake.settings import IntakeSettings, load_intake_settings
from sfintacct.intake.work_queues import SqsQueueSender

_ENDPOINT_VARIABLES = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SQS", "AWS_ENDPOINT_URL_SECRETS_MANAGER")
_services: dict[tuple[IntakeSettings, tuple[str | None, ...]], IntakeService] = {}


def intake_service(environ: Mapping[str, str] | None = None) -> IntakeService:
    """The service for `environ` (default: os.environ).

    Raises `IntakeMisconfigured` when the environment is incomplete or no sender could authenticate an
    Outbound Message, `SecretUnavailable` when the secret cannot be read for the cold-start check.
    """
    environment = os.environ if environ is None else environ
    settings = load_intake_settings(environment)
    key = (settings, tuple(environment.get(name) for name in _ENDPOINT_VARIABLES))
    service = _services.get(key)
    if service is None:
        secret_source: IntakeSecretSource = (
            SecretsManagerIntakeSecret(settings.intake_secret_arn, settings.secret_cache_seconds)
            if settings.intake_secret_arn
            else NoIntakeSecret()
        )
        service = IntakeService(settings, secret_source, SqsQueueSender())
        service.check_outbound_authentication()  # raises before the service is kept
        _services.clear()
        _services[key] = service
    return service
