"""The workers' public surface: the one part of :mod:`workers` the web imports, grouped by use.

- :mod:`.intake`: what the callback path needs (the enqueuer, the event id, the spool's WAL).
- :mod:`.reads`: what the read API reads (recordings in the store, outcomes, archive records).
- :mod:`.operations`: what the operator's commands do (dead letters, replays, reconciliation,
  the store's database), as functions over settings and clients returning plain results.
- :mod:`.observability`: logging, redaction and the metrics the web exposes.

Its errors are those of :mod:`workers.errors`, the other module the web may import.

May be imported by: the web (:mod:`webhooks`, its CLI included) and the tools beside it. No
other package of ``workers`` imports it: it sits at the top of the workers' layers.
May import: schemas and every package of ``workers``; never Flask, never the web. What loads
slowly (Twilio's client, the handlers, Alembic) is imported inside the functions that use it,
since every web process imports this package and few call those.
"""
