"""How a request failed: one error_type, the HTTP status, a request id and a one-line message with no secret in it.

The same rules hold for an HTTP error and for an error a provider put inside an HTTP 200 (a stream event, a body):
the error's own status or code decides its type, so `--retries` treats both alike.
"""

from __future__ import annotations

from dataclasses import dataclass
import math
import re
from typing import Any, Mapping

from .. import redaction
from ..settings.model import ProviderSettings
from ..redaction import scrub_known  # noqa: F401  (openai_compatible imports it from here)
from .wire import DeadlineExceeded

RETRYABLE = ("rate_limit", "server", "connection")

# Words in an error's code or type, and the error_type each means, checked in this order.
_CODE_WORDS = (
    ("rate_limit", "rate_limit"), ("rate-limit", "rate_limit"), ("too_many", "rate_limit"), ("quota", "rate_limit"),
    ("auth", "auth"), ("api_key", "auth"), ("permission", "auth"), ("forbidden", "auth"),
    ("not_found", "not_found"), ("does_not_exist", "not_found"),
    ("invalid", "bad_request"), ("bad_request", "bad_request"), ("context_length", "bad_request"),
    ("server", "server"), ("internal", "server"), ("overloaded", "server"), ("unavailable", "server"),
    ("timeout", "server"), ("upstream", "server"),
)


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


def _status_in(error: Mapping[str, Any]) -> int | None:
    for key in ("status_code", "status", "code"):
        value = error.get(key)
        if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) == 3:
            value = int(value)  # only ASCII: int() reads '٥٠٣' as 503, and '²' not at all
        if isinstance(value, int) and not isinstance(value, bool) and 100 <= value <= 599:
            return value
    return None


def _message_in(error: Mapping[str, Any]) -> str:
    message = error.get("message") or error.get("detail") or error.get("error")
    return str(message) if message else str(dict(error))


def _settings_hint(kind: str, settings: ProviderSettings, model: str) -> str:
    if kind == "auth" and settings.key_env:
        return f" (check {settings.key_env})"
    if kind == "not_found":
        return f" (model {model!r} may be retired: {settings.model_hint})"
    return ""


def in_body_failure(
    error: Mapping[str, Any], settings: ProviderSettings, model: str, request_id: str | None
) -> Failure:
    """An error a provider sent inside an HTTP 200: typed by its own status, else by the words of its code."""
    status = _status_in(error)
    if status is not None:
        kind = kind_for_status(status)
    else:
        words = " ".join(str(error.get(key, "")) for key in ("code", "type")).lower()
        kind = next((kind for word, kind in _CODE_WORDS if word in words), "server")
    code = error.get("code") if error.get("code") not in (None, status) else None
    label = f"HTTP 200 carrying error {status if status is not None else ''}{f' {code}' if code else ''}".rstrip()
    message = f"{label}: {_message_in(error)}" + _settings_hint(kind, settings, model)
    return Failure(kind, status, scrub(message, known_secrets(settings)), request_id)


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
            message += _settings_hint(kind, settings, model)
        if kind in ("rate_limit", "server"):
            retry_after = retry_after_s(headers)
    elif names & {"APIConnectionError", "TransportError"}:
        cause = exc if "TransportError" in names else (exc.__cause__ or exc.__context__)
        detail = f"{type(cause).__name__}: {cause}" if cause else str(exc)
        kind, message = "connection", f"connection to {endpoint} failed: {detail}"
    else:
        kind, message = "bad_response", f"unreadable response: {type(exc).__name__}: {exc}"
    return Failure(kind, status, scrub(message, known_secrets(settings)), request_id, retry_after)
