"""The one error hierarchy of haniwa.

Every failure a client can cause or observe is a :class:`PlatformError`. Each class carries a ``code``
(the AWS error code name) that ``api/errors.py`` renders once per surface: Bedrock looks the HTTP status
up in the service model, OpenAI maps it to its own error types.

::

    PlatformError                     (code = InternalServerException)
    ├── ValidationError               ValidationException
    ├── NotFoundError                 ResourceNotFoundException
    ├── ConflictError                 ConflictException
    ├── ThrottledError                ThrottlingException
    ├── QuotaExceededError            ServiceQuotaExceededException
    ├── AccessDeniedError             AccessDeniedException
    ├── ModelError                    ModelErrorException
    │   ├── ModelTimeoutError         ModelTimeoutException
    │   └── ModelNotReadyError        ModelNotReadyException
    └── NotImplementedOperationError  (a Bedrock operation haniwa does not serve yet)

    UsageError                        a developer mistake found at start-up; never an HTTP 4xx
"""

from __future__ import annotations

__all__ = [
    "PlatformError",
    "ValidationError",
    "NotFoundError",
    "ConflictError",
    "ThrottledError",
    "QuotaExceededError",
    "AccessDeniedError",
    "ModelError",
    "ModelTimeoutError",
    "ModelNotReadyError",
    "NotImplementedOperationError",
    "UsageError",
]


class PlatformError(Exception):
    """Base of every error a request can end with; ``message`` is shown to the client."""

    code = "InternalServerException"

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


class ValidationError(PlatformError):
    """The request is malformed or a value is out of range."""

    code = "ValidationException"


class NotFoundError(PlatformError):
    """A model, resource or conversation does not exist."""

    code = "ResourceNotFoundException"


class ConflictError(PlatformError):
    """The resource is in a state that forbids the request."""

    code = "ConflictException"


class ThrottledError(PlatformError):
    """Too many requests are queued for a model, or a caller's rate limit is spent.

    ``retry_after`` is the number of seconds after which the same request would be admitted (rendered as
    the ``Retry-After`` header on both surfaces), or None when the server cannot tell.
    """

    code = "ThrottlingException"

    def __init__(self, message: str, *, param: str | None = None, retry_after: float | None = None) -> None:
        super().__init__(message, param=param)
        self.retry_after = retry_after


class QuotaExceededError(PlatformError):
    """A configured quota would be exceeded."""

    code = "ServiceQuotaExceededException"


class AccessDeniedError(PlatformError):
    """The signature or API key is missing or wrong."""

    code = "AccessDeniedException"


class ModelError(PlatformError):
    """The model backend failed while producing an answer."""

    code = "ModelErrorException"


class ModelTimeoutError(ModelError):
    """The model took longer than allowed."""

    code = "ModelTimeoutException"


class ModelNotReadyError(ModelError):
    """The model cannot be loaded (missing weights, missing extra)."""

    code = "ModelNotReadyException"


class NotImplementedOperationError(PlatformError):
    """A valid Bedrock operation that this haniwa version does not serve."""

    code = "NotImplementedException"


class UsageError(Exception):
    """A developer or operator mistake detected at start-up (bad config, unsafe bind)."""
