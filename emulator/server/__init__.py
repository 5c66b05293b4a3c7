"""Serving the emulator: the Flask app factory, the hooks every /v1 and /_media request passes
(concurrency limit, faults, latency, authentication, request log) and the cheroot HTTP server
that ``python -m emulator serve`` runs.

May import: :mod:`emulator.views`, :mod:`emulator.model`, :mod:`emulator.errors`; never
:mod:`emulator.client`.
"""
