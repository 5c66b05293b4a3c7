"""The emulator's Flask blueprints: the Twilio REST API (recordings, rooms, compositions),
pre-signed media downloads, and the control API under ``/_emulator``.

May import: :mod:`emulator.model`, :mod:`emulator.errors` and its own modules; never
:mod:`emulator.server` (which assembles these blueprints into an app) nor
:mod:`emulator.client`.
"""
