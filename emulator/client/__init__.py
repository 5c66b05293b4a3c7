"""Driving an emulator from outside, over HTTP: the emulator as a subprocess
(:class:`EmulatorProcess`), its control API (:class:`EmulatorControl`), and whole rooms played
to a callback URL with Twilio's signed status callbacks (:class:`RoomSimulator`).

May import: :mod:`emulator.model` (SIDs, timestamps, the callbacks' wire format) and
:mod:`emulator.errors`; never :mod:`emulator.server` nor :mod:`emulator.views`: the emulator
it drives runs in another process.
"""

from __future__ import annotations

from emulator.client.control import EmulatorControl
from emulator.client.process import EmulatorProcess
from emulator.client.simulator import RoomSimulator, SimulatedRoom

__all__ = ["EmulatorControl", "EmulatorProcess", "RoomSimulator", "SimulatedRoom"]
