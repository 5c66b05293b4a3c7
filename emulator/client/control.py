"""A thin client of the emulator's control API (``/_emulator``)."""

from __future__ import annotations

from typing import Any

from requests import RequestException, Response, Session

from emulator.client.session import SessionClient
from emulator.errors import ControlError


class EmulatorControl(SessionClient):
    """Seeds recordings and rooms, injects faults and reads the traffic of one emulator."""

    def __init__(self, base_url: str, *, session: Session | None = None, timeout: float = 10.0):
        super().__init__(session, timeout)
        self.base_url = base_url.rstrip("/")

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        try:
            response: Response = self._session.request(
                method, f"{self.base_url}/_emulator{path}", json=body, timeout=self._timeout
            )
        except RequestException as exc:
            raise ControlError(0, f"{method} {path}: {exc}") from exc
        with response:
            if response.status_code >= 400:
                raise ControlError(response.status_code, response.text)
            return response.json() if response.content else None

    def _object(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        found: dict[str, Any] = self._call(method, path, body)
        return found

    def _list(self, path: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self._call("GET", path)
        return found

    # Recordings

    def create_recording(self, *, exist_ok: bool = False, **fields: Any) -> dict[str, Any]:
        """Create a recording (``room_sid`` required); returns its room-level resource JSON."""
        body = dict(fields, exist_ok=True) if exist_ok else fields
        return self._object("POST", "/recordings", body)

    def update_recording(self, sid: str, **fields: Any) -> dict[str, Any]:
        return self._object("PATCH", f"/recordings/{sid}", fields)

    def get_recording(self, sid: str) -> dict[str, Any]:
        """The raw stored recording (ControlError 404 when unknown)."""
        return self._object("GET", f"/recordings/{sid}")

    def recordings(self) -> list[dict[str, Any]]:
        return self._list("/recordings")

    # Rooms

    def create_room(self, *, exist_ok: bool = False, **fields: Any) -> dict[str, Any]:
        body = dict(fields, exist_ok=True) if exist_ok else fields
        return self._object("POST", "/rooms", body)

    def rooms(self) -> list[dict[str, Any]]:
        return self._list("/rooms")

    def update_room(self, sid: str, **fields: Any) -> dict[str, Any]:
        return self._object("PATCH", f"/rooms/{sid}", fields)

    # Compositions (created through POST /v1/Compositions)

    def compositions(self) -> list[dict[str, Any]]:
        """Every composition's resource JSON plus the ``callbacks`` it sent."""
        return self._list("/compositions")

    def get_composition(self, sid: str) -> dict[str, Any]:
        return self._object("GET", f"/compositions/{sid}")

    def advance_composition(self, sid: str, **options: Any) -> dict[str, Any]:
        """One step (``to=``, ``error_message=`` optional), once its callbacks were sent."""
        return self._object("POST", f"/compositions/{sid}/advance", options)

    def set_composition_settings(self, **settings: Any) -> dict[str, Any]:
        """``auto_advance_ms``: ms between automatic steps, or None to advance by hand."""
        return self._object("POST", "/composition-settings", settings)

    # Faults, settings, traffic

    def add_fault(self, path: str = "", action: str = "status", **options: Any) -> dict[str, Any]:
        """Add a rule; options: method, status, retry_after, latency_ms, count, probability."""
        return self._object("POST", "/faults", {"path": path, "action": action, **options})

    def faults(self) -> list[dict[str, Any]]:
        return self._list("/faults")

    def clear_faults(self) -> None:
        self._call("DELETE", "/faults")

    def set_settings(self, **settings: Any) -> dict[str, Any]:
        """Set ``max_concurrency`` (int or None), ``latency_ms`` and/or
        ``throttle_retry_after`` (seconds of ``Retry-After`` on its 429, or None)."""
        return self._object("POST", "/settings", settings)

    def requests(self) -> list[dict[str, Any]]:
        """Served /v1 and /_media requests, oldest first."""
        return self._list("/requests")

    def clear_requests(self) -> None:
        self._call("DELETE", "/requests")

    def stats(self) -> dict[str, Any]:
        return self._object("GET", "/stats")

    def reset(self) -> None:
        self._call("POST", "/reset")
