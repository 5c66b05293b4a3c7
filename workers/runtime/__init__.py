"""A worker process: what its tasks share (:mod:`.context`, built once per process after the
pool forked), its Celery signals for logs and metrics (:mod:`.signals`), and the memory of its
prefork pool (:mod:`.prefork`).

May import: schemas and the packages below it (handlers, twilio, delivery, state, outbound,
observability, errors).
"""
