"""What the workers keep in Redis, and how long: every key (:mod:`workers.state.keys`), the
dead letters (:mod:`.deadletters`), each handler's outcome per event (:mod:`.outcomes`), what
is known of each room's completion (:mod:`.rooms`), and whether Redis may evict any of it
(:mod:`.redis_policy`); and the one way every process opens a Redis client, a single Redis or
the master of a Sentinel group (:mod:`.redis_client`).

May import: schemas, workers.errors, workers.observability. Imported by everything above it;
the web reaches it only through :mod:`workers.service`.
"""
