"""The gateway's one exception tree.

Each error knows its HTTP status and the ``type`` it shows in the engine's error
shape, ``{"type": ..., "message": ..., "code": 0}``. The single handler in
:mod:`gateway.responses` turns them into responses.
"""

from __future__ import annotations

from typing import Any

from gateway import outcomes


class GatewayError(Exception):
    """Base of every error that the gateway answers with itself."""

    status = 500
    error_type = "GatewayError"
    # the start outcome this error stands for in the decision log line and the
    # metrics' words; None means the error's own type
    outcome: str | None = None

    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra

    def headers(self) -> dict[str, str]:
        """Return the headers that go with the error response."""
        return {}


class ConfigError(GatewayError):
    """A setting from the environment has a bad value."""

    error_type = "ConfigError"


# client errors: nothing is reserved and nothing is forwarded


class InvalidRequest(GatewayError):
    """The request is malformed, so it can't be reserved or forwarded."""

    status = 400
    error_type = "InvalidRequestException"


class BusinessKeyMissing(InvalidRequest):
    """The start has no businessKey, and idempotency needs one."""

    error_type = "BusinessKeyRequired"


class Unauthenticated(GatewayError):
    """The gateway's own authentication is on and the request has no valid key."""

    status = 401
    error_type = "AuthenticationException"

    def headers(self) -> dict[str, str]:
        """Return the challenge of RFC 6750, section 3."""
        return {"WWW-Authenticate": 'Bearer realm="gateway"'}


class PayloadTooLarge(GatewayError):
    """The request body is larger than the configured limit."""

    status = 413
    error_type = "PayloadTooLarge"


class PathNotFound(GatewayError):
    """The path is not one that the gateway serves."""

    status = 404
    error_type = "NotFound"


class ReplayRefused(GatewayError):
    """The engine won't let this caller read the instance, so it gets no replay.

    The status is the engine's own (401, 403, or 404 for data it hides), but
    the body is the gateway's: the engine's message may name the instance.
    """

    error_type = "ReplayRefused"
    outcome = outcomes.REJECTED

    def __init__(self, message: str, status: int, challenge: str | None) -> None:
        super().__init__(message)
        self.status = status
        self.challenge = challenge

    def headers(self) -> dict[str, str]:
        """Return the engine's authentication challenge, if it sent one."""
        return {"WWW-Authenticate": self.challenge} if self.challenge else {}


class IdempotencyKeyReused(GatewayError):
    """The businessKey was already used for a start with other content."""

    status = 422
    error_type = "IdempotencyKeyReused"
    outcome = outcomes.REJECTED


# the start exists or may exist, but its answer is not available yet


class RetryableError(GatewayError):
    """An error that a client should retry after ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: int, **extra: Any) -> None:
        super().__init__(message, **extra)
        self.retry_after = max(1, retry_after)

    def headers(self) -> dict[str, str]:
        """Return the Retry-After header (RFC 9110, section 10.2.3)."""
        return {"Retry-After": str(self.retry_after)}


class StartInProgress(RetryableError):
    """Another request holds a live reservation for the same start."""

    status = 409
    error_type = "StartInProgress"
    outcome = outcomes.CONFLICT


class StartOutcomeUnknown(RetryableError):
    """The engine may or may not have started the instance."""

    status = 503
    error_type = "StartOutcomeUnknown"
    outcome = outcomes.UNKNOWN


class StartTimedOut(StartOutcomeUnknown):
    """The engine did not answer within the engine timeout."""

    status = 504
    error_type = "StartTimedOut"


class DatabaseUnavailable(RetryableError):
    """PostgreSQL can't be reached, so no reservation can be made."""

    status = 503
    error_type = "ReservationStoreUnavailable"


class EngineUnavailable(RetryableError):
    """The engine refused the connection, so nothing reached it."""

    status = 503
    error_type = "EngineUnavailable"


class StartNotSent(EngineUnavailable):
    """The engine refused the connection for a start, whose reservation is gone."""

    outcome = outcomes.RELEASED


class EngineConnectionLost(RetryableError):
    """A passed-through request lost its connection to the engine."""

    status = 502
    error_type = "EngineConnectionLost"
