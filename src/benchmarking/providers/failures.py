"""How a request failed: one error_type, the HTTP status, a request id and a one-line message with no secret in it.

Shared by every API: the SDKs' exceptions, HTTP statuses and their Retry-After. An error a provider puts inside an
HTTP 200 has a shape per API and is read by its dialect (dialects/), typed by the same kind_for_status, so that
`--retries` treats both alike.
"""

from __future__ import annotations

from dataclasses import dataclass
import math
import re
from typing import Any, Mapping

from .. import redaction
from ..settings.model import ProviderSettings
from .wire import DeadlineExceeded

RETRYABLE = ("rate_limit", "server", "connection")

@dataclass(frozen=True)
class Failure:
    error_type: str
    http_status: int | None
    message: str
    request_id: str | None = None
    retry_after_s: float | None = None


def known_secrets(settings: ProviderSettings) -> tuple[str, ...]:
    """The values to scrub from anything this provider's answers put in front of a user."""
    return (settings.api_key.reveal(),) if settings.api_key else ()


def scrub(text: str, secrets: tuple[str, ...] = ()) -> str:
    """One line of at most 500 characters, with every known key and anything key-shaped replaced by ****."""
    text = " ".join(redaction.scrub(text, secrets).split())
    return text if len(text) <= 500 else text[:497] + "..."


def kind_for_status(status: int) -> str:
    if status in (401, 403):
        return "auth"
    if status == 404:
        return "not_found"
    if status == 429:
        return "rate_limit"
    if status >= 500:
        return "server"
    return "bad_request"


def retry_after_s(headers: Mapping[str, str]) -> float | None:
    """The wait a 429 or 5xx asks for; None when absent or not a sane number of seconds (an HTTP date, -1, NaN)."""
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        text = headers.get(name)
        if not text:
            continue
        try:
            value = float(text) * scale
        except ValueError:
            continue
        if math.isfinite(value) and value >= 0:
            return value
    return None


def settings_hint(kind: str, settings: ProviderSettings, model: str) -> str:
    if kind == "auth" and settings.key_env:
        return f" (check {settings.key_env})"
    if kind == "not_found":
        return f" (model {model!r} may be retired: {settings.model_hint})"
    return ""


def _status_message(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, Mapping):
        inner = body.get("error", body)
        if isinstance(inner, Mapping) and inner.get("message"):
            return str(inner["message"])
        if body.get("message"):
            return str(body["message"])
        if isinstance(body.get("detail"), str):
            return body["detail"]
    text = str(getattr(exc, "message", None) or exc)
    # The SDKs prefix "Error code: 404 - " to a body they could not parse; the status is said once, by us.
    return re.sub(r"^Error code: \d+ - ", "", text)


def _is_model_not_found(exc: Any, message: str) -> bool:
    body = getattr(exc, "body", None)
    inner = body.get("error", body) if isinstance(body, Mapping) else None
    code = str(inner.get("code") or inner.get("type") or "") if isinstance(inner, Mapping) else ""
    return "model" in code.lower() or "model" in message.lower()


def classify(exc: BaseException, settings: ProviderSettings, model: str, endpoint: str) -> Failure:
    """Map any SDK's exception to one error_type, an HTTP status and a one-line, scrubbed message."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    response = getattr(exc, "response", None)
    headers: Mapping[str, str] = getattr(response, "headers", None) or {}
    request_id = getattr(exc, "request_id", None) or headers.get("x-request-id") or headers.get("request-id")
    status = getattr(exc, "status_code", None)
    retry_after = None
    # groq's and together's streams let httpx's own errors through unwrapped, so both families are named here.
    if isinstance(exc, DeadlineExceeded) or names & {"APITimeoutError", "TimeoutException"}:
        kind, message = "timeout", f"no complete answer within {settings.timeout_s:g} s"
    elif isinstance(status, int):
        kind = kind_for_status(status)
        detail = _status_message(exc)
        message = f"HTTP {status}: {detail}"
        if kind == "not_found" and not _is_model_not_found(exc, detail):
            message += f"; check the base URL {endpoint} (most servers serve the API under /v1)"
        else:
            message += settings_hint(kind, settings, model)
        if kind in ("rate_limit", "server"):
            retry_after = retry_after_s(headers)
    elif names & {"APIConnectionError", "TransportError"}:
        cause = exc if "TransportError" in names else (exc.__cause__ or exc.__context__)
        detail = f"{type(cause).__name__}: {cause}" if cause else str(exc)
        kind, message = "connection", f"connection to {endpoint} failed: {detail}"
    else:
        kind, message = "bad_response", f"unreadable response: {type(exc).__name__}: {exc}"
    return Failure(kind, status, scrub(message, known_secrets(settings)), request_id, retry_after)
