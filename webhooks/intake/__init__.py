"""The callback intake: ``/twilio/room-events``, where Twilio's room status callbacks arrive.

It owns the endpoint (:mod:`.views`), its state (:mod:`.state`: the enqueuer, the spool, what
the checks read from the settings), every check a callback passes (:mod:`.access`,
:mod:`.params`, :mod:`.signature`, :mod:`.freshness`), what a request learns about its callback
for logs and metrics (:mod:`.context`), and the local spool that keeps accepted callbacks while
the queue is unreachable (:mod:`.spool`).

May import: schemas, the shared modules of :mod:`webhooks` (``app_state``, ``errors``),
:mod:`workers.service` and :mod:`workers.errors`. Never the read API nor the CLI.
"""
