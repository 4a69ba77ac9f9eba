"""One exception hierarchy; the API turns every one of them into OpenAI's error envelope."""

from __future__ import annotations

from typing import Any


class APIError(Exception):
    """The server had an error while processing your request."""

    status: int = 500
    type: str = "server_error"
    default_code: str | None = None

    def __init__(
        self,
        message: str | None = None,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        # Docstrings wrap over lines: collapse their indentation into single spaces.
        self.message = message or " ".join((self.__doc__ or "").split())
        self.param = param
        self.code = code if code is not None else self.default_code
        self.headers = headers or {}
        super().__init__(self.message)

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


class InvalidRequest(APIError):
    """The request was invalid."""

    status = 400
    type = "invalid_request_error"


class AuthenticationFailed(APIError):
    """You didn't provide an API key. You need to provide your API key in an Authorization header
    using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."""

    status = 401
    type = "invalid_request_error"


class InvalidAPIKey(AuthenticationFailed):
    """Incorrect API key provided."""

    default_code = "invalid_api_key"


class NotFound(APIError):
    """The requested resource does not exist."""

    status = 404
    type = "invalid_request_error"


class MethodNotAllowed(APIError):
    """The method is not allowed for the requested URL."""

    status = 405
    type = "invalid_request_error"


class PayloadTooLarge(APIError):
    """The request body is larger than this server accepts."""

    status = 413
    type = "invalid_request_error"
    default_code = "payload_too_large"


class UnsupportedMediaType(APIError):
    """The request's Content-Type is not supported by this endpoint."""

    status = 415
    type = "invalid_request_error"


class ServerError(APIError):
    """The server had an error while processing your request. Sorry about that!"""


def not_found(kind: str, object_id: str) -> NotFound:
    return NotFound(f"No {kind} found with id '{object_id}'.")
