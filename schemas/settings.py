"""The service's configuration, read from environment variables.

Loaded once, at the edges (``create_app``, the Celery app). A missing or malformed variable
raises :class:`ConfigurationError` naming it, so a misconfigured process refuses to start.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from marshmallow import (
    EXCLUDE,
    Schema,
    ValidationError,
    fields,
    post_load,
    validate,
    validates_schema,
)

from schemas.accounts import Accounts, AccountsJson, SharedKey, SharedKeys, TwilioAccount
from schemas.fields import CaseInsensitiveEnum, Sid, messages_by_name

DEFAULT_REDIS_URL = "redis://localhost:6379/0"
# On a broker where Celery's countdown holds a retry unacknowledged in the worker (neither Redis
# nor RabbitMQ: both delay messages themselves), whose consumer timeouts are about 30 min.
COUNTDOWN_BACKOFF_LIMIT = 1500.0
COUNTDOWN_DEFAULT_BACKOFF = 900.0
AMQP_SCHEMES = ("amqp://", "amqps://", "pyamqp://")


def _is_redis(url: str) -> bool:
    return url.startswith(("redis://", "rediss://", "unix://", "sentinel://"))


def _holds_countdowns(broker_url: str) -> bool:
    """Whether a retry's delay is a countdown held in the worker: on any broker but Redis
    (retries wait in a sorted set) and RabbitMQ (native delayed delivery, quorum queues)."""
    first = broker_url.split(";", 1)[0].strip().lower()
    return not _is_redis(first) and not first.startswith(AMQP_SCHEMES)


def _is_sentinel_url(url: str) -> bool:
    """Whether every ``;``-separated part of ``url`` is
    ``sentinel://[[username]:password@]host[:port][/db]`` (as kombu's sentinel transport reads
    it, and :mod:`workers.state.redis_client`)."""
    parts = [urlsplit(piece.strip()) for piece in url.split(";") if piece.strip()]
    try:
        ports = [part.port for part in parts]  # ValueError: a port that is no number
    except ValueError:
        return False
    return bool(parts) and all(
        part.scheme.lower() == "sentinel"
        and bool(part.hostname)
        and port != 0
        and (part.path.strip("/") or "0").isdigit()
        for part, port in zip(parts, ports, strict=True)
    )


DEFAULT_DATABASE_URL = "sqlite:///./data/roomrec.db"
DATABASE_SCHEMES = ("sqlite", "sqlite+pysqlite", "postgresql", "postgresql+psycopg", "postgres")
DEFAULT_STREAM_KEY = "roomrec:events"
DEFAULT_STREAM_MAXLEN = 100_000
DEFAULT_DEDUP_TTL = 7 * 24 * 3600
DEFAULT_CALLBACK_MAX_AGE = 3600  # a callback older than this (by its Timestamp) is refused
DEFAULT_CALLBACK_MAX_SKEW = 300  # how far a Timestamp may be ahead of this host's clock
DEFAULT_SPOOL_MAX_EVENTS = 100_000
_positive = validate.Range(min=0, min_inclusive=False)
# Reconciliation relies on the de-duplication marks to skip recordings already processed, so
# its window must be shorter than DEDUP_TTL (checked with both settings loaded); this is only
# the field's own upper bound (a week).
RECONCILE_WINDOW_MAX = 7 * 24 * 3600
LOG_FORMATS = ("auto", "json", "text")
DEFAULT_METRICS_PORT = 9809  # worker's exporter (9808 is celery-exporter's); 0 turns it off
DEFAULT_ARCHIVE_URL = "file://./data/recordings"
_S3_BUCKET_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789.-")


class ConfigurationError(ValueError):
    """The environment does not describe a runnable service; the message names each variable."""


class CommaList(fields.Field):
    """``a, b,,c`` -> ``["a", "b", "c"]``; each item checked by ``inner``."""

    def __init__(self, inner: fields.Field, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.inner = inner

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> list[Any]:
        if not isinstance(value, str):
            raise ValidationError("Must be a comma-separated list.")
        items = [item.strip() for item in value.split(",") if item.strip()]
        return [self.inner.deserialize(item) for item in items]


def _check_database_url(value: str) -> None:
    scheme, separator, _ = value.partition("://")
    if not separator or scheme.lower() not in DATABASE_SCHEMES:
        raise ValidationError(
            "Must be sqlite:///path/to/file.db or postgresql+psycopg://user:password@host/db."
        )


def _check_webhook_secret(value: str) -> None:
    body = value.removeprefix("whsec_")
    try:
        key = base64.b64decode(body + "=" * (-len(body) % 4), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if not value.startswith("whsec_") or len(key) < 24:
        raise ValidationError("Must be whsec_ followed by a base64 key of at least 24 bytes.")


def _check_directory(value: str) -> None:
    if not os.path.isdir(value):
        raise ValidationError("Must be an existing directory.")


def _check_archive_url(value: str) -> None:
    scheme, _, rest = value.partition(":")
    if scheme.lower() == "s3":
        bucket = rest.removeprefix("//").partition("/")[0]
        if (
            not rest.startswith("//")
            or not 3 <= len(bucket) <= 63
            or not set(bucket) <= _S3_BUCKET_CHARACTERS
            or bucket[0] in ".-"
            or bucket[-1] in ".-"
        ):
            raise ValidationError("Must be s3://bucket or s3://bucket/prefix (a valid bucket).")
    elif scheme.lower() != "file" or not rest.strip("/"):
        raise ValidationError("Must be file:///path/to/directory or s3://bucket/prefix.")


class Network(fields.Field):
    """A CIDR network (``10.0.0.0/8``, ``::1/128``, or one address) as an ``ipaddress`` one."""

    def _deserialize(
        self, value: Any, attr: str | None, data: Any, **kwargs: Any
    ) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
        try:
            return ipaddress.ip_network(str(value).strip())
        except ValueError:
            raise ValidationError(
                f"Not a CIDR network: {value!r} (e.g. 127.0.0.0/8; no host bits set)."
            ) from None


def _check_base_url(value: str) -> None:
    parts = urlsplit(value)
    if parts.username is not None or parts.password is not None:
        raise ValidationError(
            "Must not hold credentials: set them in TWILIO_WEBHOOK_BASIC_AUTH instead."
        )
    if parts.query or parts.fragment:
        raise ValidationError("Must be the app's root URL, without a query or fragment.")


def host_and_port(netloc: str) -> tuple[str, int | None] | None:
    """(host, lower-cased; port or None) of ``host[:port]`` (an ``ALLOWED_HOSTS`` entry or a
    request's ``Host``); None when it is not one (no userinfo, a port of 0-65535)."""
    try:
        parts = urlsplit("//" + netloc)
        port = parts.port  # ValueError when not a number in 0-65535
    except ValueError:
        return None
    if not parts.hostname or parts.netloc != netloc or "@" in netloc:
        return None
    return parts.hostname.lower(), port


def _check_allowed_host(value: str) -> None:
    parsed = host_and_port(value)
    if parsed is None or parsed[1] == 0:
        raise ValidationError(f"Not a host[:port]: {value!r}.")


def _check_basic_auth(value: str) -> None:
    user, separator, password = value.partition(":")
    if not separator or not user or not password:
        raise ValidationError("Must be user:password, both non-empty.")  # never quote it


class _BaseSettingsSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    redis_url = fields.String(data_key="REDIS_URL", load_default=DEFAULT_REDIS_URL)
    broker_url = fields.String(data_key="CELERY_BROKER_URL", load_default=None)
    log_level = CaseInsensitiveEnum(
        ("DEBUG", "INFO", "WARNING", "ERROR"), data_key="LOG_LEVEL", load_default="INFO"
    )
    log_format = fields.String(
        data_key="LOG_FORMAT", load_default="auto", validate=validate.OneOf(LOG_FORMATS)
    )

    database_url = fields.String(
        data_key="DATABASE_URL", load_default=DEFAULT_DATABASE_URL, validate=_check_database_url
    )
    twilio_accounts = AccountsJson(data_key="TWILIO_ACCOUNTS", load_default=())

    dedup_ttl = fields.Integer(
        data_key="DEDUP_TTL", load_default=DEFAULT_DEDUP_TTL, validate=validate.Range(min=60)
    )
    # The master behind a sentinel:// REDIS_URL or CELERY_BROKER_URL (one for both).
    redis_sentinel_master = fields.String(
        data_key="REDIS_SENTINEL_MASTER", load_default=None, validate=validate.Length(min=1)
    )
    redis_sentinel_password = fields.String(data_key="REDIS_SENTINEL_PASSWORD", load_default=None)

    @validates_schema
    def _check_sentinel_urls(self, data: dict[str, Any], **_: Any) -> None:
        errors: dict[str, list[str]] = {}
        for variable, name in (("REDIS_URL", "redis_url"), ("CELERY_BROKER_URL", "broker_url")):
            url = data.get(name) or ""
            if not url.split(";", 1)[0].strip().lower().startswith("sentinel://"):
                continue
            if not _is_sentinel_url(url):  # never quoted: the URL may hold a password
                errors[variable] = [
                    "Every ;-separated URL must be sentinel://[[username]:password@]host[:port][/db]."
                ]
            elif not data.get("redis_sentinel_master"):
                errors.setdefault("REDIS_SENTINEL_MASTER", []).append(
                    f"Required when {variable} is a sentinel:// URL: the name the sentinels "
                    "monitor the master under."
                )
        if errors:
            raise ValidationError(errors)

    @post_load
    def _default_broker(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        """``CELERY_BROKER_URL`` defaults to ``REDIS_URL``; the ``REDIS_SENTINEL_*`` variables
        make one :class:`RedisSentinel`."""
        data["broker_url"] = data["broker_url"] or data["redis_url"]
        master = data.pop("redis_sentinel_master")
        password = data.pop("redis_sentinel_password")
        data["redis_sentinel"] = RedisSentinel(master, password) if master else None
        return data


@dataclass(frozen=True, slots=True)
class RedisSentinel:
    """How to find the master behind a ``sentinel://`` URL (``REDIS_URL``,
    ``CELERY_BROKER_URL``): the name the sentinels monitor it under, and the sentinels' own
    password when they require one (the master's is the URL's)."""

    master_name: str
    password: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class WebSettings:
    twilio_auth_token: str = field(repr=False)
    twilio_auth_token_secondary: str | None = field(repr=False)
    public_base_url: str | None
    trust_proxy_headers: bool
    redis_url: str = field(repr=False)
    broker_url: str = field(repr=False)
    enqueue_timeout: float
    spool_path: str
    dedup_ttl: int
    log_level: str
    database_url: str = field(default=DEFAULT_DATABASE_URL, repr=False)
    api_token: str | None = field(default=None, repr=False)
    log_format: str = "auto"
    callback_max_age: int = DEFAULT_CALLBACK_MAX_AGE
    callback_max_skew: int = DEFAULT_CALLBACK_MAX_SKEW
    spool_max_events: int = DEFAULT_SPOOL_MAX_EVENTS
    twilio_account_sid: str | None = None
    twilio_accounts: tuple[TwilioAccount, ...] = field(default=(), repr=False)
    # The URL a signature is checked against: PUBLIC_BASE_URL, else a Host of ALLOWED_HOSTS,
    # else (DEV_MODE only) whatever Host the request names.
    allowed_hosts: tuple[str, ...] = ()
    dev_mode: bool = False
    twilio_webhook_shared_keys: tuple[SharedKey, ...] = field(default=(), repr=False)
    webhook_basic_auth_user: str | None = None
    webhook_basic_auth_password: str | None = field(default=None, repr=False)
    redis_sentinel: RedisSentinel | None = None  # for sentinel:// URLs

    @property
    def accounts(self) -> Accounts:
        """The accounts whose callbacks this web accepts, by ``AccountSid``."""
        main = None
        if self.twilio_auth_token:
            main = TwilioAccount(
                account_sid=self.twilio_account_sid,
                auth_token=self.twilio_auth_token,
                auth_token_secondary=self.twilio_auth_token_secondary,
            )
        return Accounts(main, self.twilio_accounts)


class WebSettingsSchema(_BaseSettingsSchema):
    # Required unless TWILIO_ACCOUNTS names the accounts (checked in _check_accounts).
    twilio_auth_token = fields.String(
        data_key="TWILIO_AUTH_TOKEN", load_default=None, validate=validate.Length(min=1)
    )
    twilio_account_sid = Sid("AC", data_key="TWILIO_ACCOUNT_SID", load_default=None)
    twilio_auth_token_secondary = fields.String(
        data_key="TWILIO_AUTH_TOKEN_SECONDARY", load_default=None
    )
    public_base_url = fields.Url(
        data_key="PUBLIC_BASE_URL", load_default=None, require_tld=False,
        schemes={"http", "https"}, validate=_check_base_url,
    )  # fmt: skip
    allowed_hosts = CommaList(
        fields.String(validate=_check_allowed_host), data_key="ALLOWED_HOSTS", load_default=[]
    )
    dev_mode = fields.Boolean(data_key="DEV_MODE", load_default=False)
    twilio_webhook_shared_keys = SharedKeys(data_key="TWILIO_WEBHOOK_SHARED_KEYS", load_default=())
    twilio_webhook_basic_auth = fields.String(
        data_key="TWILIO_WEBHOOK_BASIC_AUTH", load_default=None, validate=_check_basic_auth
    )
    trust_proxy_headers = fields.Boolean(data_key="TRUST_PROXY_HEADERS", load_default=False)
    enqueue_timeout = fields.Float(data_key="ENQUEUE_TIMEOUT", load_default=0.5, validate=_positive)
    spool_path = fields.String(data_key="SPOOL_PATH", load_default="./data/spool.sqlite3")
    api_token = fields.String(
        data_key="API_TOKEN", load_default=None, validate=validate.Length(min=16)
    )
    callback_max_age = fields.Integer(
        data_key="CALLBACK_MAX_AGE", load_default=DEFAULT_CALLBACK_MAX_AGE,
        validate=validate.Range(min=1),
    )  # fmt: skip
    callback_max_skew = fields.Integer(
        data_key="CALLBACK_MAX_SKEW", load_default=DEFAULT_CALLBACK_MAX_SKEW,
        validate=validate.Range(min=0),
    )  # fmt: skip
    spool_max_events = fields.Integer(
        data_key="SPOOL_MAX_EVENTS", load_default=DEFAULT_SPOOL_MAX_EVENTS,
        validate=validate.Range(min=1),
    )  # fmt: skip

    @validates_schema
    def _check_replay_window(self, data: dict[str, Any], **_: Any) -> None:
        """A callback is accepted until CALLBACK_MAX_AGE after its Timestamp, which may be up
        to CALLBACK_MAX_SKEW ahead of the clock when it first arrives: its de-duplication mark
        (DEDUP_TTL) must outlive that, or a replay would be queued again."""
        window = data.get("callback_max_age", 0) + data.get("callback_max_skew", 0)
        if window >= data.get("dedup_ttl", DEFAULT_DEDUP_TTL):
            raise ValidationError({"CALLBACK_MAX_AGE": [
                "CALLBACK_MAX_AGE + CALLBACK_MAX_SKEW must be shorter than DEDUP_TTL, or a "
                "replayed callback could outlive its de-duplication mark."
            ]})  # fmt: skip

    @validates_schema
    def _check_accounts(self, data: dict[str, Any], **_: Any) -> None:
        if not data.get("twilio_auth_token") and not data.get("twilio_accounts"):
            raise ValidationError(
                {"TWILIO_AUTH_TOKEN": ["Required (or TWILIO_ACCOUNTS): it checks signatures."]}
            )
        if any(not account.auth_token for account in data.get("twilio_accounts", ())):
            raise ValidationError(
                {"TWILIO_ACCOUNTS": ["Every account needs its auth_token: it checks signatures."]}
            )
        if data.get("twilio_accounts") and data.get("twilio_auth_token"):
            if not data.get("twilio_account_sid"):  # else its callbacks match no account
                raise ValidationError({"TWILIO_ACCOUNT_SID": [
                    "Required with both TWILIO_AUTH_TOKEN and TWILIO_ACCOUNTS: callbacks are "
                    "checked with the tokens of the account their AccountSid names."
                ]})  # fmt: skip

    @validates_schema
    def _check_signed_url(self, data: dict[str, Any], **_: Any) -> None:
        if not (data.get("public_base_url") or data.get("allowed_hosts") or data.get("dev_mode")):
            raise ValidationError({"PUBLIC_BASE_URL": [
                "Required, or ALLOWED_HOSTS (the Hosts a callback may name), or DEV_MODE=1 on a "
                "development machine: without them a signature made for any host of the account "
                "(a staging deployment) would be accepted."
            ]})  # fmt: skip

    @post_load
    def _to_settings(self, data: dict[str, Any], **_: Any) -> WebSettings:
        if data["public_base_url"]:
            data["public_base_url"] = data["public_base_url"].rstrip("/")
        data["allowed_hosts"] = tuple(host.lower() for host in data["allowed_hosts"])
        basic = data.pop("twilio_webhook_basic_auth")
        if basic:
            user, _, password = basic.partition(":")
            data["webhook_basic_auth_user"], data["webhook_basic_auth_password"] = user, password
        return WebSettings(**data)


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    twilio_account_sid: str
    twilio_auth_token: str | None = field(repr=False)
    twilio_api_key_sid: str | None
    twilio_api_key_secret: str | None = field(repr=False)
    twilio_video_base_url: str
    twilio_timeout: float
    handlers: tuple[str, ...]
    forward_urls: tuple[str, ...]
    forward_secret: str | None = field(repr=False)
    forward_allow_http: bool
    forward_timeout: float
    max_retries: int
    retry_backoff_max: float
    visibility_timeout: int
    redis_url: str = field(repr=False)
    broker_url: str = field(repr=False)
    log_level: str
    reconcile_interval: int = 900
    reconcile_window: int = 7200
    dedup_ttl: int = DEFAULT_DEDUP_TTL
    database_url: str = field(default=DEFAULT_DATABASE_URL, repr=False)
    stream_name: str = DEFAULT_STREAM_KEY  # STREAM_KEY (a "key" suffix would be masked in logs)
    stream_maxlen: int = DEFAULT_STREAM_MAXLEN
    archive_url: str = DEFAULT_ARCHIVE_URL
    archive_delete_from_twilio: bool = False
    archive_timeout: float = 15.0
    s3_endpoint_url: str | None = None
    aws_access_key_id: str | None = None
    aws_secret_access_key: str | None = field(default=None, repr=False)
    aws_session_token: str | None = field(default=None, repr=False)
    aws_region: str | None = None
    log_format: str = "auto"
    metrics_port: int = DEFAULT_METRICS_PORT
    metrics_dir: str | None = None
    room_ready_events: bool = True
    compose_on_room_ready: bool = False
    public_base_url: str | None = None
    twilio_max_concurrency: int | None = None  # None: no client-side limit
    # Non-public networks media downloads may reach anyway (MEDIA_ALLOWED_NETWORKS).
    media_allowed_networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    twilio_accounts: tuple[TwilioAccount, ...] = field(default=(), repr=False)
    redis_sentinel: RedisSentinel | None = None  # for sentinel:// URLs

    @property
    def accounts(self) -> Accounts:
        """Every account whose recordings this worker fetches, the main one first."""
        main = TwilioAccount(
            account_sid=self.twilio_account_sid,
            auth_token=self.twilio_auth_token,
            api_key_sid=self.twilio_api_key_sid,
            api_key_secret=self.twilio_api_key_secret,
        )
        return Accounts(main, self.twilio_accounts)

    @property
    def marks_ttl(self) -> int:
        """How long the workers keep what says an effect happened: the done marks, the outcomes,
        the room state (so ``room.recordings_ready`` is emitted once) and the composition marker.

        The rule: such a mark must outlive every delivery of its event that can still come.

        - A callback replayed to the web is refused while its de-duplication mark lives
          (``DEDUP_TTL`` from its first arrival) and by its Timestamp afterwards (the web requires
          ``CALLBACK_MAX_AGE + CALLBACK_MAX_SKEW < DEDUP_TTL``): nothing arrives later than
          ``DEDUP_TTL`` after the first arrival.
        - A task of the event can still run up to ``TASK_MAX_RETRIES x RETRY_BACKOFF_MAX`` after
          it was queued (its retries), plus one ``VISIBILITY_TIMEOUT`` (a redelivery).

        A mark is set at the latest when the last of those runs ends, so it is kept for the sum:
        ``DEDUP_TTL`` plus the retry horizon plus the visibility timeout. Computed rather than
        checked at start-up, so no combination of the three can break the rule.
        """
        retries = math.ceil(self.max_retries * self.retry_backoff_max)
        return self.dedup_ttl + retries + self.visibility_timeout

    @property
    def twilio_credentials(self) -> tuple[str, str]:
        """(username, password) for Twilio's REST API: the API key when set, else the account."""
        if self.twilio_api_key_sid and self.twilio_api_key_secret:
            return self.twilio_api_key_sid, self.twilio_api_key_secret
        assert self.twilio_auth_token is not None  # guaranteed by WorkerSettingsSchema
        return self.twilio_account_sid, self.twilio_auth_token


class WorkerSettingsSchema(_BaseSettingsSchema):
    twilio_account_sid = Sid("AC", data_key="TWILIO_ACCOUNT_SID", required=True)
    twilio_auth_token = fields.String(data_key="TWILIO_AUTH_TOKEN", load_default=None)
    twilio_api_key_sid = Sid("SK", data_key="TWILIO_API_KEY_SID", load_default=None)
    twilio_api_key_secret = fields.String(data_key="TWILIO_API_KEY_SECRET", load_default=None)
    twilio_video_base_url = fields.Url(
        data_key="TWILIO_VIDEO_BASE_URL", load_default="https://video.twilio.com", require_tld=False
    )
    twilio_timeout = fields.Float(data_key="TWILIO_TIMEOUT", load_default=10.0, validate=_positive)
    twilio_max_concurrency = fields.Integer(
        data_key="TWILIO_MAX_CONCURRENCY", load_default=None, validate=validate.Range(min=1)
    )
    stream_name = fields.String(
        data_key="STREAM_KEY", load_default=DEFAULT_STREAM_KEY, validate=validate.Length(min=1)
    )
    stream_maxlen = fields.Integer(
        data_key="STREAM_MAXLEN", load_default=DEFAULT_STREAM_MAXLEN,
        validate=validate.Range(min=1),
    )  # fmt: skip
    handlers = CommaList(fields.String(), data_key="HANDLERS", load_default=["log"])
    forward_urls = CommaList(
        fields.Url(require_tld=False, schemes={"http", "https"}),
        data_key="FORWARD_URLS",
        load_default=[],
    )
    forward_secret = fields.String(
        data_key="FORWARD_SECRET", load_default=None, validate=_check_webhook_secret
    )
    forward_allow_http = fields.Boolean(data_key="FORWARD_ALLOW_HTTP", load_default=False)
    forward_timeout = fields.Float(
        data_key="FORWARD_TIMEOUT", load_default=10.0, validate=_positive
    )
    max_retries = fields.Integer(
        data_key="TASK_MAX_RETRIES", load_default=15, validate=validate.Range(min=0, max=100)
    )
    # Default: 1800 s on Redis (retries wait in a sorted set) and RabbitMQ (in its delayed
    # queues); 900 s on another broker, where Celery holds them unacknowledged in the worker.
    retry_backoff_max = fields.Float(
        data_key="RETRY_BACKOFF_MAX", load_default=None, validate=_positive
    )
    visibility_timeout = fields.Integer(
        data_key="VISIBILITY_TIMEOUT", load_default=90, validate=validate.Range(min=30)
    )
    reconcile_interval = fields.Integer(
        data_key="RECONCILE_INTERVAL", load_default=900, validate=validate.Range(min=0)
    )
    reconcile_window = fields.Integer(
        data_key="RECONCILE_WINDOW", load_default=7200,
        validate=validate.Range(min=60, max=RECONCILE_WINDOW_MAX),
    )  # fmt: skip
    archive_url = fields.String(
        data_key="ARCHIVE_URL", load_default=DEFAULT_ARCHIVE_URL, validate=_check_archive_url
    )
    archive_delete_from_twilio = fields.Boolean(
        data_key="ARCHIVE_DELETE_FROM_TWILIO", load_default=False
    )
    media_allowed_networks = CommaList(
        Network(), data_key="MEDIA_ALLOWED_NETWORKS", load_default=[]
    )
    archive_timeout = fields.Float(
        data_key="ARCHIVE_TIMEOUT", load_default=15.0,
        validate=validate.Range(min=0, max=120, min_inclusive=False),
    )  # fmt: skip
    s3_endpoint_url = fields.Url(
        data_key="S3_ENDPOINT_URL", load_default=None, require_tld=False,
        schemes={"http", "https"},
    )  # fmt: skip
    aws_access_key_id = fields.String(data_key="AWS_ACCESS_KEY_ID", load_default=None)
    aws_secret_access_key = fields.String(data_key="AWS_SECRET_ACCESS_KEY", load_default=None)
    aws_session_token = fields.String(data_key="AWS_SESSION_TOKEN", load_default=None)
    aws_region = fields.String(data_key="AWS_REGION", load_default=None)
    metrics_port = fields.Integer(
        data_key="METRICS_PORT", load_default=DEFAULT_METRICS_PORT,
        validate=validate.Range(min=0, max=65535),
    )  # fmt: skip
    metrics_dir = fields.String(
        data_key="PROMETHEUS_MULTIPROC_DIR", load_default=None, validate=_check_directory
    )
    room_ready_events = fields.Boolean(data_key="ROOM_READY_EVENTS", load_default=True)
    compose_on_room_ready = fields.Boolean(data_key="COMPOSE_ON_ROOM_READY", load_default=False)
    public_base_url = fields.Url(
        data_key="PUBLIC_BASE_URL", load_default=None, require_tld=False,
        schemes={"http", "https"},
    )  # fmt: skip

    @validates_schema
    def _check_compose(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("compose_on_room_ready") and not data.get("public_base_url"):
            raise ValidationError(
                {"PUBLIC_BASE_URL": ["Required with COMPOSE_ON_ROOM_READY=1: compositions "
                                     "report back to PUBLIC_BASE_URL/twilio/room-events."]}
            )  # fmt: skip

    @validates_schema(skip_on_field_errors=False)
    def _check_archive(self, data: dict[str, Any], **_: Any) -> None:
        errors: dict[str, list[str]] = {}
        key_id, secret = data.get("aws_access_key_id"), data.get("aws_secret_access_key")
        if bool(key_id) != bool(secret):
            missing = "AWS_SECRET_ACCESS_KEY" if key_id else "AWS_ACCESS_KEY_ID"
            errors[missing] = ["Set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or neither."]
        if data.get("archive_delete_from_twilio") and "archive" not in data.get("handlers", []):
            errors["ARCHIVE_DELETE_FROM_TWILIO"] = [
                "Only with HANDLERS including archive: a recording is deleted once archived."
            ]
        if errors:
            raise ValidationError(errors)

    @validates_schema
    def _check_reconcile(self, data: dict[str, Any], **_: Any) -> None:
        interval, window = data.get("reconcile_interval", 0), data.get("reconcile_window", 0)
        if interval and window <= interval:  # consecutive windows must overlap
            raise ValidationError({"RECONCILE_WINDOW": ["Must be longer than RECONCILE_INTERVAL."]})
        if window >= data.get("dedup_ttl", DEFAULT_DEDUP_TTL):  # older ones would be redone
            raise ValidationError({"RECONCILE_WINDOW": ["Must be shorter than DEDUP_TTL."]})

    @validates_schema(skip_on_field_errors=False)
    def _check_consistency(self, data: dict[str, Any], **_: Any) -> None:
        errors: dict[str, list[str]] = {}
        key_sid, key_secret = data.get("twilio_api_key_sid"), data.get("twilio_api_key_secret")
        if bool(key_sid) != bool(key_secret):
            missing = "TWILIO_API_KEY_SECRET" if key_sid else "TWILIO_API_KEY_SID"
            errors[missing] = ["Set both TWILIO_API_KEY_SID and TWILIO_API_KEY_SECRET, or neither."]
        elif not key_sid and not data.get("twilio_auth_token"):
            errors["TWILIO_AUTH_TOKEN"] = [
                "Required to call Twilio's REST API unless TWILIO_API_KEY_SID and "
                "TWILIO_API_KEY_SECRET are set."
            ]
        if "forward" in data.get("handlers", []):
            if not data.get("forward_urls"):
                errors["FORWARD_URLS"] = ["Required when HANDLERS includes forward."]
            if not data.get("forward_secret"):
                errors["FORWARD_SECRET"] = ["Required when HANDLERS includes forward."]
        if not data.get("forward_allow_http"):
            plain = [url for url in data.get("forward_urls", []) if not url.startswith("https://")]
            if plain:
                errors["FORWARD_URLS"] = [
                    f"Not https: {', '.join(plain)}. Set FORWARD_ALLOW_HTTP=1 for local targets."
                ]
        if errors:
            raise ValidationError(errors)

    @validates_schema
    def _check_backoff_for_the_broker(self, data: dict[str, Any], **_: Any) -> None:
        broker = data.get("broker_url") or data.get("redis_url") or DEFAULT_REDIS_URL
        backoff_max = data.get("retry_backoff_max")
        if backoff_max and backoff_max >= COUNTDOWN_BACKOFF_LIMIT and _holds_countdowns(broker):
            raise ValidationError({"RETRY_BACKOFF_MAX": [
                f"Must be under {COUNTDOWN_BACKOFF_LIMIT:.0f} s with a broker other than Redis "
                "or RabbitMQ: Celery holds retries unacknowledged in the worker there, and "
                "brokers close a consumer holding one for long (30 min by default)."
            ]})  # fmt: skip

    @post_load
    def _to_settings(self, data: dict[str, Any], **_: Any) -> WorkerSettings:
        if data["retry_backoff_max"] is None:
            countdowns = _holds_countdowns(data["broker_url"])
            data["retry_backoff_max"] = COUNTDOWN_DEFAULT_BACKOFF if countdowns else 1800.0
        for name in ("handlers", "forward_urls", "media_allowed_networks"):
            data[name] = tuple(data[name])
        if data["public_base_url"]:
            data["public_base_url"] = data["public_base_url"].rstrip("/")
        return WorkerSettings(**data)


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """How gunicorn serves the web (read by ``gunicorn.conf.py``)."""

    header_timeout: float
    body_timeout: float
    worker_connections: int
    trust_proxy_headers: bool
    workers: int


class ServerSettingsSchema(Schema):
    """The web server's bounds on slow clients and its trust in proxy headers."""

    class Meta:
        unknown = EXCLUDE

    # Longest wait for a request's line and headers, on a new or a kept-alive connection.
    header_timeout = fields.Float(
        data_key="WEB_HEADER_TIMEOUT", load_default=10.0, validate=_positive
    )
    # Longest a request's body may take to arrive, from its headers' end.
    body_timeout = fields.Float(data_key="WEB_BODY_TIMEOUT", load_default=10.0, validate=_positive)
    # Connections each gunicorn worker holds at once; more wait in the listen backlog.
    worker_connections = fields.Integer(
        data_key="WEB_WORKER_CONNECTIONS", load_default=1000, validate=validate.Range(min=1)
    )
    trust_proxy_headers = fields.Boolean(data_key="TRUST_PROXY_HEADERS", load_default=False)
    # gunicorn worker processes (gunicorn's own variable; --workers overrides it).
    workers = fields.Integer(
        data_key="WEB_CONCURRENCY", load_default=2, validate=validate.Range(min=1)
    )

    @post_load
    def _to_settings(self, data: dict[str, Any], **_: Any) -> ServerSettings:
        return ServerSettings(**data)


def load_settings(schema: Schema, env: Mapping[str, str]) -> Any:
    """Load ``env`` with ``schema``; empty variables count as unset."""
    present = {key: value for key, value in env.items() if value != ""}
    try:
        return schema.load(present)
    except ValidationError as exc:
        found = sorted(messages_by_name(exc).items())
        problems = "; ".join(f"{name}: {' '.join(messages)}" for name, messages in found)
        raise ConfigurationError(f"invalid configuration: {problems}") from None
