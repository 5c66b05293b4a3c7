"""The emulated Twilio state, free of HTTP serving: accounts, rooms and their recordings,
compositions and how they progress, list filters and paging, media bytes and signed media
URLs, fault rules and settings, and :class:`~emulator.model.state.EmulatorState`, which holds
one emulator's share of all of it.

May import: :mod:`emulator.errors` and its own modules (never Flask, nor the other
sub-packages). Compositions send their own status callbacks (:mod:`.composition_flow`), as
Twilio does.
"""
