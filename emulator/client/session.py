"""The HTTP session the emulator's clients send through: given by the caller (and then the
caller's to close), or their own, closed with them."""

from __future__ import annotations

from typing import Self

from requests import Session


class SessionClient:
    """Sends through ``session``, or through a Session of its own that :meth:`close` (or the
    end of a ``with`` block) closes; each request waits at most ``timeout`` seconds."""

    def __init__(self, session: Session | None, timeout: float) -> None:
        self._session = session or Session()
        self._owns_session = session is None
        self._timeout = timeout

    def close(self) -> None:
        if self._owns_session:
            self._session.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
