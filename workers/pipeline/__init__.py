"""The event pipeline: the Celery tasks (:mod:`.tasks`), thin over the fan-out to the handlers
(:mod:`.fanout`), room completion (:mod:`.rooms`) and compositions (:mod:`.compositions`),
with one retry policy for all of them (:mod:`.retry`).

The route of one ``recording-completed`` event through it: ``tasks.process_event`` loads the
queued :class:`schemas.EventMessage`, fetches the RoomRecording (:mod:`workers.twilio`), runs
every (handler, target) once (``fanout.run_handlers``: done marks in
:mod:`workers.state.keys`), then tells ``rooms.after_event``. A failure anywhere is
``retry.retry_or_give_up``'s: the next attempt through the broker (:mod:`workers.delivery`), or
a dead letter (:mod:`workers.state.deadletters`).

May import: schemas, workers.runtime and every package below it; never Flask, never the web.
"""
