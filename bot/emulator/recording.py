"""What the emulator remembers about the calls it answered, for assertions and benchmarks."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Call:
    """One Bot API request and the answer it got.

    ``params`` are the decoded parameters — coerced to the spec's types when the request was
    valid, as received otherwise; uploaded files appear as ``spec.Upload`` objects (with the
    bytes). ``method`` is the canonical spelling when the method exists. ``time`` is emulator
    clock time. ``fault`` names the injected fault that answered it, if any.
    """

    method: str
    params: dict[str, Any]
    status: int
    response: dict[str, Any]
    time: float
    token: str
    fault: str | None = None
    via: str = "http"  # "http", or "webhook-reply" for a method answered in a webhook response

    @property
    def ok(self) -> bool:
        return bool(self.response.get("ok"))

    @property
    def result(self) -> Any:
        return self.response.get("result")

    @property
    def description(self) -> str | None:
        return self.response.get("description")

    def as_dict(self) -> dict[str, Any]:
        """A JSON-friendly form (uploads shown by name and size) for the control API."""
        params = {
            key: (repr(value) if type(value).__name__ == "Upload" else value)
            for key, value in self.params.items()
        }
        return {
            "method": self.method,
            "params": params,
            "status": self.status,
            "response": self.response,
            "time": self.time,
            "token": self.token,
            "fault": self.fault,
            "via": self.via,
        }


@dataclass
class Stats:
    """Counters over everything the emulator answered."""

    requests: int = 0
    ok: int = 0
    errors: int = 0
    #: 429 answers, from flood limits and from injected storms alike.
    too_many_requests: int = 0
    #: 429 answers from flood limits only.
    flood_limited: int = 0
    #: Injected 5xx answers.
    server_errors: int = 0
    #: Calls held by an injected timeout.
    timeouts: int = 0
    messages_sent: int = 0
    updates_created: int = 0
    webhook_deliveries: int = 0
    webhook_failures: int = 0
    by_method: Counter[str] = field(default_factory=Counter)
    by_status: Counter[int] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "ok": self.ok,
            "errors": self.errors,
            "too_many_requests": self.too_many_requests,
            "flood_limited": self.flood_limited,
            "server_errors": self.server_errors,
            "timeouts": self.timeouts,
            "messages_sent": self.messages_sent,
            "updates_created": self.updates_created,
            "webhook_deliveries": self.webhook_deliveries,
            "webhook_failures": self.webhook_failures,
            "by_method": dict(self.by_method),
            "by_status": {str(k): v for k, v in self.by_status.items()},
        }
