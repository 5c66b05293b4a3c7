"""Several Twilio accounts in one deployment: ``TWILIO_ACCOUNTS``.

An ISV runs one Twilio subaccount per customer. Each subaccount signs its callbacks with its own
auth token, and its recordings are fetched with its own credentials (its auth token, or an API
key of that account). ``TWILIO_ACCOUNTS`` is a JSON object keyed by account SID::

    {"AC0123...": {"auth_token": "...", "auth_token_secondary": "...",
                   "api_key_sid": "SK...", "api_key_secret": "..."}}

Only ``auth_token`` is required for the web (it checks signatures); a worker needs either the
auth token or the API key pair. The single-account variables (``TWILIO_ACCOUNT_SID``,
``TWILIO_AUTH_TOKEN`` ...) keep describing the main account, exactly as without this variable.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validates_schema

from schemas.fields import Sid


@dataclass(frozen=True, slots=True)
class TwilioAccount:
    """One Twilio account: what verifies its callbacks and what calls its REST API."""

    account_sid: str | None  # None: the single-account web, which may not know its SID
    auth_token: str | None = field(default=None, repr=False)
    auth_token_secondary: str | None = field(default=None, repr=False)
    api_key_sid: str | None = None
    api_key_secret: str | None = field(default=None, repr=False)

    @property
    def auth_tokens(self) -> tuple[str, ...]:
        """The tokens a callback signature may be made with: the token, then the secondary."""
        return tuple(token for token in (self.auth_token, self.auth_token_secondary) if token)

    @property
    def credentials(self) -> tuple[str, str]:
        """(username, password) for Twilio's REST API: the API key when set, else the account
        SID and auth token."""
        if self.api_key_sid and self.api_key_secret:
            return self.api_key_sid, self.api_key_secret
        if self.account_sid is None or self.auth_token is None:
            raise ValueError("this account has no REST credentials")
        return self.account_sid, self.auth_token


class TwilioAccountSchema(Schema):
    """One entry of ``TWILIO_ACCOUNTS`` (the account SID is its key)."""

    class Meta:
        unknown = EXCLUDE

    auth_token = fields.String(load_default=None)
    auth_token_secondary = fields.String(load_default=None)
    api_key_sid = Sid("SK", load_default=None)
    api_key_secret = fields.String(load_default=None)

    @validates_schema
    def _check(self, data: dict[str, Any], **_: Any) -> None:
        if bool(data.get("api_key_sid")) != bool(data.get("api_key_secret")):
            raise ValidationError("Set both api_key_sid and api_key_secret, or neither.")
        if not data.get("auth_token") and not data.get("api_key_sid"):
            raise ValidationError("Needs auth_token, or api_key_sid and api_key_secret.")


class AccountsJson(fields.Field):
    """``TWILIO_ACCOUNTS``: a JSON object {account SID: account}, loaded into a tuple of
    :class:`TwilioAccount` in the order given. Errors name the account and the field."""

    _sid = Sid("AC")
    _account = TwilioAccountSchema()

    def _deserialize(
        self, value: Any, attr: str | None, data: Any, **kwargs: Any
    ) -> tuple[TwilioAccount, ...]:
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                raise ValidationError(f"Not valid JSON: {exc.msg}.") from None
        if not isinstance(value, Mapping) or not value:
            raise ValidationError('Must be a JSON object: {"AC...": {"auth_token": "..."}}.')
        accounts: list[TwilioAccount] = []
        errors: list[str] = []
        for sid, entry in value.items():
            try:
                self._sid.deserialize(sid)
                loaded = self._account.load(entry)
            except ValidationError as exc:
                errors.extend(f"{sid}: {message}" for message in _flat(exc.messages))
                continue
            accounts.append(TwilioAccount(account_sid=sid, **loaded))
        if errors:
            raise ValidationError(errors)
        return tuple(accounts)


class Accounts:
    """The accounts a deployment serves, looked up by account SID.

    ``main`` is the account of the single-account variables (its SID may be unknown to the
    web); ``others`` come from ``TWILIO_ACCOUNTS``. With no others the deployment is a
    single-account one and every callback is checked against the main account's tokens,
    exactly as before ``TWILIO_ACCOUNTS`` existed.
    """

    def __init__(self, main: TwilioAccount | None, others: Iterable[TwilioAccount] = ()) -> None:
        self.main = main
        self._by_sid: dict[str, TwilioAccount] = {}
        for account in (*([main] if main else []), *others):
            if account.account_sid is not None:
                self._by_sid.setdefault(account.account_sid, account)

    @property
    def multi(self) -> bool:
        """Whether callbacks must name a configured account (``TWILIO_ACCOUNTS`` is set)."""
        return len(self._by_sid) > (1 if self.main and self.main.account_sid else 0)

    def get(self, account_sid: str | None) -> TwilioAccount | None:
        """The account of ``account_sid``; in a single-account deployment that does not know
        its SID, the main account for any SID. None when the account is not served here."""
        if account_sid is not None and account_sid in self._by_sid:
            return self._by_sid[account_sid]
        if self.main is not None and self.main.account_sid is None and not self.multi:
            return self.main
        return None

    def __iter__(self) -> Iterator[TwilioAccount]:
        if self.main is not None and self.main.account_sid is None:
            yield self.main
        yield from self._by_sid.values()


@dataclass(frozen=True, slots=True)
class SharedKey:
    """A SharedKey of Twilio's Webhooks configuration: its id (named by the request's
    ``X-Twilio-Webhooks-Signature-Settings``) and the secret it signs with."""

    key_id: str
    secret: str = field(repr=False)


# A key id is printable ASCII without the separators of either format it appears in.
_KEY_ID_FORBIDDEN = frozenset(" ,=;\"'")
KEY_ID_MAX_LENGTH = 128


def check_key_id(key_id: str) -> str | None:
    """Why ``key_id`` cannot be a SharedKey id, or None when it can."""
    if not key_id:
        return "a key id is empty"
    if len(key_id) > KEY_ID_MAX_LENGTH:
        return f"a key id is at most {KEY_ID_MAX_LENGTH} characters"
    if not (key_id.isascii() and key_id.isprintable()) or _KEY_ID_FORBIDDEN & set(key_id):
        return "a key id is printable ASCII without spaces, quotes, ',', ';' or '='"
    return None


class SharedKeys(fields.Field):
    """``TWILIO_WEBHOOK_SHARED_KEYS``: ``KEY_ID=SECRET,KEY_ID=SECRET`` (two during a rotation),
    loaded into a tuple of :class:`SharedKey`. The secret is everything after the first ``=``
    (base64 padding stays in it); it may not contain ``,``. Errors name the entry's position
    and its key id, never a secret."""

    def _deserialize(
        self, value: Any, attr: str | None, data: Any, **kwargs: Any
    ) -> tuple[SharedKey, ...]:
        if not isinstance(value, str):
            raise ValidationError("Must be KEY_ID=SECRET, comma-separated.")
        keys: list[SharedKey] = []
        errors: list[str] = []
        seen: set[str] = set()
        for position, item in enumerate(value.split(","), start=1):
            key_id, separator, secret = item.strip().partition("=")
            key_id, secret = key_id.strip(), secret.strip()
            if not separator:  # the whole entry may be a secret: do not quote it
                errors.append(f"Entry {position} is not KEY_ID=SECRET.")
            elif problem := check_key_id(key_id):
                errors.append(f"Entry {position}: {problem}.")
            elif not secret:
                errors.append(f"Key {key_id}: the secret is empty.")
            elif key_id in seen:
                errors.append(f"Key {key_id}: listed twice.")
            else:
                seen.add(key_id)
                keys.append(SharedKey(key_id=key_id, secret=secret))
        if errors:
            raise ValidationError(errors)
        return tuple(keys)


def _flat(messages: Any, prefix: str = "") -> list[str]:
    """marshmallow's nested messages as lines ``field: message``."""
    if isinstance(messages, str):
        return [prefix + messages]
    if isinstance(messages, Mapping):
        return [
            line
            for name, value in messages.items()
            for line in _flat(value, prefix if name == "_schema" else f"{prefix}{name}: ")
        ]
    return [line for value in messages for line in _flat(value, prefix)]
