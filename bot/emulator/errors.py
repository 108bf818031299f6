"""The error answers of the Bot API, in the shape Telegram sends them.

Every failed call is answered with ``{"ok": false, "error_code": N, "description": "..."}`` and,
for flood control, ``"parameters": {"retry_after": N}``. aiogram turns the status code into an
exception class (400 TelegramBadRequest, 403 TelegramForbiddenError, 429 TelegramRetryAfter, …),
so the status code and the description prefix must agree the way they do on Telegram.

Where Telegram's exact wording is known it is used verbatim; where it is not (a few limits that
Telegram enforces without a documented message), the emulator's text follows the same style and
says which field broke which rule.
"""

from __future__ import annotations

from typing import Any

#: The prefix Telegram puts before the description, by status code.
_PREFIXES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


class ApiError(Exception):
    """A Bot API call that fails with a Telegram-shaped error answer."""

    def __init__(
        self, status: int, description: str, parameters: dict[str, Any] | None = None
    ) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters

    def payload(self) -> dict[str, Any]:
        """The JSON body Telegram would send for this error."""
        body: dict[str, Any] = {
            "ok": False,
            "error_code": self.status,
            "description": self.description,
        }
        if self.parameters:
            body["parameters"] = self.parameters
        return body


def _with_prefix(status: int, detail: str | None) -> str:
    prefix = _PREFIXES.get(status, "Error")
    return prefix if not detail else f"{prefix}: {detail}"


def bad_request(detail: str) -> ApiError:
    """400 ``Bad Request: <detail>``."""
    return ApiError(400, _with_prefix(400, detail))


def forbidden(detail: str) -> ApiError:
    """403 ``Forbidden: <detail>``."""
    return ApiError(403, _with_prefix(403, detail))


def conflict(detail: str) -> ApiError:
    """409 ``Conflict: <detail>``."""
    return ApiError(409, _with_prefix(409, detail))


def unauthorized() -> ApiError:
    """401, answered for a token no bot owns."""
    return ApiError(401, "Unauthorized")


def not_found(detail: str | None = None) -> ApiError:
    """404, answered for a method the Bot API does not have."""
    return ApiError(404, _with_prefix(404, detail))


def too_many_requests(retry_after: int) -> ApiError:
    """429 with ``parameters.retry_after``; aiogram raises TelegramRetryAfter from it."""
    retry_after = max(1, int(retry_after))
    return ApiError(
        429,
        f"Too Many Requests: retry after {retry_after}",
        {"retry_after": retry_after},
    )


def server_error(status: int) -> ApiError:
    """A 5xx answer such as Telegram's front ends give during an outage."""
    return ApiError(status, _with_prefix(status, None))
