"""The accounts one emulator serves: the main account and its credentials, more accounts
(``--accounts``), and the secret that signs media URLs.

Every resource belongs to the main account unless it was created for another; each account's
credentials see only its own resources, as at Twilio.
"""

from __future__ import annotations

import hmac
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field

from emulator.model.formats import is_sid


@dataclass(frozen=True)
class Account:
    """One more account the emulator serves (a subaccount): its own credentials, and its own
    recordings and rooms, which the other accounts' credentials get 404 for, as at Twilio."""

    account_sid: str
    auth_token: str = field(repr=False)
    api_key_sid: str | None = None
    api_key_secret: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        _check_credentials(self.account_sid, self.auth_token, self.api_key_sid,
                           self.api_key_secret)  # fmt: skip

    def pairs(self) -> list[tuple[str, str]]:
        pairs = [(self.account_sid, self.auth_token)]
        if self.api_key_sid is not None and self.api_key_secret is not None:
            pairs.append((self.api_key_sid, self.api_key_secret))
        return pairs


def parse_accounts(text: str) -> tuple[Account, ...]:
    """``--accounts`` / ``TWILIO_ACCOUNTS``: a JSON object ``{"AC…": {"auth_token": …,
    "api_key_sid": …, "api_key_secret": …}}`` (the shape roomrec's settings read); an empty
    string is none. ValueError names what is wrong."""
    if not text.strip():
        return ()
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"accounts: not valid JSON ({exc})") from None
    if not isinstance(data, Mapping):
        raise ValueError('accounts: expected a JSON object {"AC…": {"auth_token": "…"}}')
    accounts = []
    for sid, entry in data.items():
        if not isinstance(entry, Mapping):
            raise ValueError(f"accounts: {sid}: expected an object")
        accounts.append(Account(
            account_sid=sid, auth_token=str(entry.get("auth_token") or ""),
            api_key_sid=entry.get("api_key_sid"), api_key_secret=entry.get("api_key_secret"),
        ))  # fmt: skip
    return tuple(accounts)


def _check_credentials(
    account_sid: str, auth_token: str, api_key_sid: str | None, api_key_secret: str | None
) -> None:
    if not is_sid(account_sid, "AC"):
        raise ValueError("account_sid must be AC followed by 32 hex digits")
    if not auth_token:
        raise ValueError("auth_token must not be empty")
    if (api_key_sid is None) != (api_key_secret is None):
        raise ValueError("api_key_sid and api_key_secret go together")
    if api_key_sid is not None and not is_sid(api_key_sid, "SK"):
        raise ValueError("api_key_sid must be SK followed by 32 hex digits")


@dataclass(frozen=True)
class EmulatorConfig:
    """Credentials the emulator accepts and the secret that signs media URLs.

    ``account_sid`` is the main account: what every resource belongs to unless created for
    another. ``accounts`` are more accounts (none by default), each with its own credentials.
    """

    account_sid: str
    auth_token: str
    api_key_sid: str | None = None
    api_key_secret: str | None = None
    # Overrides the base URL taken from each request's Host header.
    base_url: str | None = None
    media_secret: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)
    accounts: tuple[Account, ...] = ()

    def __post_init__(self) -> None:
        _check_credentials(self.account_sid, self.auth_token, self.api_key_sid,
                           self.api_key_secret)  # fmt: skip
        sids = [self.account_sid, *(account.account_sid for account in self.accounts)]
        if len(set(sids)) != len(sids):
            raise ValueError("accounts: each account SID may appear once")

    @property
    def account_sids(self) -> tuple[str, ...]:
        return (self.account_sid, *(account.account_sid for account in self.accounts))

    def account_of(self, username: str | None, password: str | None) -> str | None:
        """The account whose credentials HTTP Basic ``username:password`` is, or None."""
        if not username or password is None:
            return None
        main = Account(self.account_sid, self.auth_token, self.api_key_sid, self.api_key_secret)
        for account in (main, *self.accounts):
            if any(
                hmac.compare_digest(username, user) and hmac.compare_digest(password, secret)
                for user, secret in account.pairs()
            ):
                return account.account_sid
        return None

    def accepts(self, username: str | None, password: str | None) -> bool:
        """Whether HTTP Basic ``username:password`` is one of the configured credentials."""
        return self.account_of(username, password) is not None
