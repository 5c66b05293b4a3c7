"""Logging for the web and the workers: one JSON object per line, or plain text on a terminal.

:func:`configure_logging` installs one handler on the root logger. Every line carries the
fields bound in the current context (:func:`bind`): ``room_sid``, ``recording_sid``, ``event``,
``handler``, ``task_id``, ``attempt`` ... The Celery worker binds the task's own fields for the
duration of each task (:func:`install_celery_logging`), so task code only binds what it learns.

The last step of every line is a redaction safety net: the configured secrets (tokens, and what
URL settings hold: userinfo, query values, token-like path segments, see
:func:`workers.observability.redaction.secret_parts`) and the query of anything that looks like a
signed media URL
are masked, whatever the code logged. Every line may quote what a client sent, so redaction runs
in time linear in the line; :func:`truncate` bounds such text where it is logged.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import sys
from collections.abc import Iterable, Mapping
from contextvars import ContextVar, Token
from types import MappingProxyType, TracebackType
from typing import Any

from pythonjsonlogger.json import JsonFormatter

from schemas.settings import LOG_FORMATS
from workers.observability.redaction import MASK, secret_parts

LOGGERS = ("webhooks", "workers", "roomrec", "schemas")  # ours: set to LOG_LEVEL
# Client-supplied text (a path, a reason quoting a URL) is cut to this many characters in a log.
TRUNCATE_AT = 400

_EMPTY: Mapping[str, Any] = MappingProxyType({})
_context: ContextVar[Mapping[str, Any]] = ContextVar("roomrec_log_context", default=_EMPTY)
# Signed URL queries. A match is the query of a URL that carries a signature (from its first
# "?" to the end of the run of URL characters, when a marker follows that "?" in the run), or
# a signature-like parameter on its own. The pattern of the first, as one expression, was
#   \?[^\s"'<>\\]*?(?:signature|x-amz-credential)=[^\s"'<>\\]*   (re.I)
# whose lazy scan restarts at every "?" of a run: quadratic in a run of "?" (0.4-0.8 s of CPU
# for a 4 KiB request line). :func:`_mask_signed_queries` finds the same matches in linear
# time: each run once, each "?" at most once. Every expression here is linear: a literal
# alternation, or a character class run that nothing follows.
_URL_RUN = re.compile(r"[^\s\"'<>\\]+")
_QUERY_MARKER = re.compile(r"(?:signature|x-amz-credential)=", re.I)
_SIGNATURE_PARAM = re.compile(
    r"\b((?:X-Amz-)?Signature|X-Amz-Credential|X-Amz-Security-Token)=[^&\s\"'<>\\]+", re.I
)
# Every match of either holds one of these, in some case: an ASCII line (every JSON
# line) without any, nearly all lines, skips the regular expressions. (Under re.I, a few
# non-ASCII letters match ASCII ones, such as the long s; str.lower() does not map them.)
_SIGNATURE_MARKERS = ("signature=", "x-amz-credential=", "x-amz-security-token=")
_SECRET_SUFFIXES = ("token", "secret", "secondary", "password", "key")
_TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class bind:  # lower case: used like a function, ``bind(room_sid=...)`` or ``with bind(...):``
    """Add ``fields`` to every line logged in the current context (thread, task, request).

    Takes effect at once; as a context manager the previous fields come back on exit. ``None``
    values are left out.
    """

    def __init__(self, **fields: Any) -> None:
        added = {name: value for name, value in fields.items() if value is not None}
        self._token: Token[Mapping[str, Any]] = _context.set({**_context.get(), **added})

    def __enter__(self) -> bind:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None = None,
        exc: BaseException | None = None,
        tb: TracebackType | None = None,
    ) -> None:
        self.unbind()

    def unbind(self) -> None:
        """Restore the fields bound before this one (in the context it was made in)."""
        _context.reset(self._token)


def bound_fields() -> Mapping[str, Any]:
    """The fields bound in the current context."""
    return _context.get()


class ContextFilter(logging.Filter):
    """Copies the bound fields onto each record; ``extra=`` given to the call wins."""

    def filter(self, record: logging.LogRecord) -> bool:
        fields = _context.get()
        for name, value in fields.items():
            if name not in record.__dict__:
                setattr(record, name, value)
        record.roomrec_fields = tuple(fields)
        return True


class Redactor:
    """Masks ``secrets`` and signed URL queries in a finished line, in time linear in its
    length (for a given set of secrets)."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        needles: set[str] = set()
        for secret in secrets:
            if secret and len(secret) >= 4:  # shorter is no secret, and would mask at random
                needles |= {secret, _json_escaped(secret), _repr_escaped(secret)}
        self.secrets = sorted(needles, key=len, reverse=True)

    def __call__(self, line: str) -> str:
        for secret in self.secrets:
            line = line.replace(secret, MASK)
        if line.isascii():  # O(1): CPython knows it of every string
            lowered = line.lower()
            if not any(marker in lowered for marker in _SIGNATURE_MARKERS):
                return line
        line = _mask_signed_queries(line)
        return _SIGNATURE_PARAM.sub(rf"\1={MASK}", line)


def _mask_signed_queries(line: str) -> str:
    """``line`` with each signed URL query replaced by ``?[REDACTED]`` (see above)."""
    kept: list[str] = []
    done = 0
    for run in _URL_RUN.finditer(line):
        start, end = run.span()
        question = line.find("?", start, end)
        if question < 0 or _QUERY_MARKER.search(line, question + 1, end) is None:
            continue
        kept += [line[done:question], "?", MASK]
        done = end
    if not kept:
        return line
    kept.append(line[done:])
    return "".join(kept)


def truncate(text: str, limit: int = TRUNCATE_AT) -> str:
    """``text`` cut to ``limit`` characters, with how many were cut: for client-supplied text
    (a path, a URL, a reason quoting one) in a log line or an error reason."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}…(+{len(text) - limit} chars)"


def _json_escaped(text: str) -> str:
    return json.dumps(text)[1:-1]


def _repr_escaped(text: str) -> str:
    """As ``text`` is written inside a quoted repr (an exception's args in a traceback)."""
    return repr(text)[1:-1]


# LogRecord's own attributes: not copied into a JSON line as extra fields.
_RESERVED = (*logging.makeLogRecord({}).__dict__, "message", "asctime", "taskName")


class _JsonLines(JsonFormatter):
    def __init__(self) -> None:
        super().__init__(
            "%(levelname)s %(name)s %(process)d %(message)s",
            rename_fields={"levelname": "level", "name": "logger", "process": "pid"},
            reserved_attrs=[*_RESERVED, "roomrec_fields"],
            timestamp="time",
        )


class _Text(logging.Formatter):
    """``time LEVEL logger: message [field=value ...]``."""

    def __init__(self) -> None:
        super().__init__(_TEXT_FORMAT)

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        names = getattr(record, "roomrec_fields", ())
        if names:
            line += " [" + " ".join(f"{name}={getattr(record, name)}" for name in names) + "]"
        return line


class RedactingFormatter(logging.Formatter):
    """Formats with ``inner``, then masks what :class:`Redactor` finds in the whole line."""

    def __init__(self, inner: logging.Formatter, redactor: Redactor) -> None:
        super().__init__()
        self.inner = inner
        self.redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        return self.redactor(self.inner.format(record))


def settings_secrets(settings: object) -> list[str]:
    """What must never reach a log among ``settings`` (a settings dataclass): every field
    named like a token, secret or password, and the secret parts of every URL, alone or in a
    list (``FORWARD_URLS``): userinfo, query values and token-like path segments, each in
    every encoding it may be logged in (:func:`workers.observability.redaction.secret_parts`)."""
    found: list[str] = []
    for item in dataclasses.fields(settings):  # type: ignore[arg-type]
        value = getattr(settings, item.name)
        listed = isinstance(value, tuple | list)
        for text in value if listed else (value,):
            if dataclasses.is_dataclass(text) and not isinstance(text, type):
                found += settings_secrets(text)  # e.g. the accounts of TWILIO_ACCOUNTS
            elif not isinstance(text, str) or not text:
                continue
            elif item.name.endswith(_SECRET_SUFFIXES):
                found.append(text)
            elif "://" in text:
                # A list of URLs is FORWARD_URLS: targets whose whole query may be a token. A
                # ";" list is kombu's failover (or Sentinel) URLs: each may hold a password.
                for url in text.split(";"):
                    found += secret_parts(url.strip(), every_query_value=listed)
    return found


def resolve_format(fmt: str, stream: Any = None) -> str:
    """``json`` or ``text`` for ``LOG_FORMAT`` ``fmt``: ``auto`` is text on a terminal."""
    if fmt not in LOG_FORMATS:
        raise ValueError(f"LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}, not {fmt!r}")
    if fmt != "auto":
        return fmt
    stream = sys.stderr if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    return "text" if isatty is not None and isatty() else "json"


def make_formatter(fmt: str = "auto", secrets: Iterable[str | None] = ()) -> logging.Formatter:
    """The formatter for ``LOG_FORMAT`` ``fmt``, with the redaction safety net."""
    inner = _JsonLines() if resolve_format(fmt) == "json" else _Text()
    return RedactingFormatter(inner, Redactor(secrets))


class RoomrecHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time (as logging's last resort does), so a
    replaced stderr (a test's capture, a daemon's redirect) never gets a closed file."""

    def __init__(self) -> None:
        logging.Handler.__init__(self)

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def configure_logging(
    level: str | int = "INFO",
    fmt: str = "auto",
    *,
    secrets: Iterable[str | None] = (),
    root_level: str | int | None = None,
) -> logging.Handler:
    """Log our packages at ``level`` through one handler on the root logger.

    Replaces the handler a previous call installed, never anyone else's (a test's capture
    stays). ``root_level`` also sets the root logger (others' libraries); ``secrets`` are masked
    in every line. Raises ``ValueError`` for an unknown ``fmt``.
    """
    handler = RoomrecHandler()
    handler.setFormatter(make_formatter(fmt, secrets))
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, RoomrecHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    if root_level is not None:
        root.setLevel(root_level)
    for name in LOGGERS:
        logging.getLogger(name).setLevel(level)
    return handler
