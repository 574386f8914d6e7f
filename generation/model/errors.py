"""The ModelError family: every way a call to a model server can fail, typed and named."""

from __future__ import annotations

from typing import Literal

Deadline = Literal["connect", "first_token", "total"]

_EXCERPT = 300


def excerpt(body: bytes | str, limit: int = _EXCERPT) -> str:
    """The first `limit` characters of a response body, decoded leniently, on one line."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "…"


class ModelError(Exception):
    """Base of every model-server failure."""


class ModelUnavailable(ModelError):
    """The server cannot be reached, or dropped the connection."""

    def __init__(self, url: str, reason: str = "connection failed") -> None:
        self.url = url
        self.reason = reason
        super().__init__(f"model server {url} unavailable: {reason}")


class ModelHTTPError(ModelError):
    """The server answered with an HTTP error status (or an error event in a stream)."""

    def __init__(self, url: str, status: int, body: str) -> None:
        self.url = url
        self.status = status
        self.body = body
        super().__init__(f"model server {url} answered HTTP {status}: {body}")


class ModelProtocolError(ModelError):
    """The server's answer is not the expected HTTP, JSON or server-sent-events shape."""

    def __init__(self, url: str, detail: str) -> None:
        self.url = url
        self.detail = detail
        super().__init__(f"malformed answer from model server {url}: {detail}")


class ModelTimeout(ModelError):
    """A deadline passed: `which` is "connect", "first_token" or "total"."""

    def __init__(self, url: str, which: Deadline, seconds: float) -> None:
        self.url = url
        self.which = which
        self.seconds = seconds
        super().__init__(f"model server {url}: {which} deadline of {seconds:g} s passed")


class ModelServerError(ModelError):
    """A model server that this process starts could not start, or died."""

    def __init__(self, message: str, log_tail: str = "") -> None:
        self.log_tail = log_tail
        super().__init__(f"{message}\n--- last lines of the server log ---\n{log_tail}"
                         if log_tail else message)
