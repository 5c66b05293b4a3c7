"""Processing again what was lost or failed: reconciliation finds recordings whose callback
never came (:mod:`.reconcile`, run on a schedule by :mod:`.schedule`), the stand-in callback
it queues for them (:mod:`.stand_in`), and the replay of dead letters and recordings
(:mod:`.replay`).

May import: schemas, workers.pipeline and every package below it.
"""
