"""Twilio Video REST emulator and room simulator.

Test and demo tooling, not part of the shipped service. It serves the RoomRecording, Room and
Composition endpoints of ``https://video.twilio.com`` on loopback, streams deterministic media
behind pre-signed URLs, injects faults on demand, and plays whole rooms that send signed status
callbacks. Run it with ``python -m emulator serve`` (:mod:`emulator.cli`) or start it from
tests with :class:`emulator.client.EmulatorProcess`.

Sub-packages, each importing only those below it:

- :mod:`emulator.client`: drives an emulator from outside (subprocess, control API, simulator);
- :mod:`emulator.server`: the app factory, the request hooks, the HTTP server;
- :mod:`emulator.views`: the Flask blueprints;
- :mod:`emulator.model`: the emulated state, free of HTTP serving;

and :mod:`emulator.errors`, the errors of them all.
"""

from __future__ import annotations
