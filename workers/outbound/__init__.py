"""Where the workers' HTTP requests may go, and the session they go through: the outbound
address policy against server-side request forgery (:mod:`.policy`) and requests' session,
checked at connect time (:mod:`.http`).

May import: schemas, workers.observability.
"""
