"""Twilio Video REST emulator and room simulator.

Test and demo tooling, not part of the shipped service. It serves the RoomRecording endpoints
of ``https://video.twilio.com`` on loopback (``emulator.app``), streams deterministic media
behind pre-signed URLs (``emulator.media``), injects faults on demand (``emulator.faults``),
and plays whole rooms that send signed status callbacks (``emulator.simulator``).
Run it with ``python -m emulator serve`` or start it from tests with
``emulator.process.EmulatorProcess``.
"""

from __future__ import annotations
