"""Twilio's Video REST API as the workers use it: one client per account (:mod:`.client`),
every request through twilio-python's client over the workers' HTTP session, and a limit on
concurrent requests per account shared by every worker on one Redis (:mod:`.limiter`).

May import: schemas, workers.errors, workers.outbound, workers.state, workers.observability.
"""
