"""A thin client of the emulator's control API (``/_emulator``)."""

from __future__ import annotations

from typing import Any

from requests import RequestException, Response, Session

from emulator.errors import ControlError


class EmulatorControl:
    """Seeds recordings and rooms, injects faults and reads the traffic of one emulator."""

    def __init__(self, base_url: str, *, session: Session | None = None, timeout: float = 10.0):
        self.base_url = base_url.rstrip("/")
        self._session = session or Session()
        self._owns_session = session is None
        self._timeout = timeout

    def close(self) -> None:
        if self._owns_session:
            self._session.close()

    def __enter__(self) -> EmulatorControl:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

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

    # Recordings

    def create_recording(self, *, exist_ok: bool = False, **fields: Any) -> dict[str, Any]:
        """Create a recording (``room_sid`` required); returns its room-level resource JSON."""
        body = dict(fields, exist_ok=True) if exist_ok else fields
        result: dict[str, Any] = self._call("POST", "/recordings", body)
        return result

    def update_recording(self, sid: str, **fields: Any) -> dict[str, Any]:
        result: dict[str, Any] = self._call("PATCH", f"/recordings/{sid}", fields)
        return result

    def get_recording(self, sid: str) -> dict[str, Any]:
        """The raw stored recording (ControlError 404 when unknown)."""
        result: dict[str, Any] = self._call("GET", f"/recordings/{sid}")
        return result

    def recordings(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("GET", "/recordings")
        return result

    # Rooms

    def create_room(self, *, exist_ok: bool = False, **fields: Any) -> dict[str, Any]:
        body = dict(fields, exist_ok=True) if exist_ok else fields
        result: dict[str, Any] = self._call("POST", "/rooms", body)
        return result

    def rooms(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("GET", "/rooms")
        return result

    def update_room(self, sid: str, **fields: Any) -> dict[str, Any]:
        result: dict[str, Any] = self._call("PATCH", f"/rooms/{sid}", fields)
        return result

    # Compositions (created through POST /v1/Compositions)

    def compositions(self) -> list[dict[str, Any]]:
        """Every composition's resource JSON plus the ``callbacks`` it sent."""
        result: list[dict[str, Any]] = self._call("GET", "/compositions")
        return result

    def get_composition(self, sid: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", f"/compositions/{sid}")
        return result

    def advance_composition(self, sid: str, **options: Any) -> dict[str, Any]:
        """One step (``to=``, ``error_message=`` optional), once its callbacks were sent."""
        result: dict[str, Any] = self._call("POST", f"/compositions/{sid}/advance", options)
        return result

    def set_composition_settings(self, **settings: Any) -> dict[str, Any]:
        """``auto_advance_ms``: ms between automatic steps, or None to advance by hand."""
        result: dict[str, Any] = self._call("POST", "/composition-settings", settings)
        return result

    # Faults, settings, traffic

    def add_fault(self, path: str = "", action: str = "status", **options: Any) -> dict[str, Any]:
        """Add a rule; options: method, status, retry_after, latency_ms, count, probability."""
        result: dict[str, Any] = self._call(
            "POST", "/faults", {"path": path, "action": action, **options}
        )
        return result

    def faults(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("GET", "/faults")
        return result

    def clear_faults(self) -> None:
        self._call("DELETE", "/faults")

    def set_settings(self, **settings: Any) -> dict[str, Any]:
        """Set ``max_concurrency`` (int or None), ``latency_ms`` and/or
        ``throttle_retry_after`` (seconds of ``Retry-After`` on its 429, or None)."""
        result: dict[str, Any] = self._call("POST", "/settings", settings)
        return result

    def requests(self) -> list[dict[str, Any]]:
        """Served /v1 and /_media requests, oldest first."""
        result: list[dict[str, Any]] = self._call("GET", "/requests")
        return result

    def clear_requests(self) -> None:
        self._call("DELETE", "/requests")

    def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/stats")
        return result

    def reset(self) -> None:
        self._call("POST", "/reset")
