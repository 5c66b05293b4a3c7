"""Seeing the service run without seeing its secrets: logging (:mod:`.logs`, JSON lines with
bound identifiers), Prometheus metrics (:mod:`.metrics`), and showing URLs without their
tokens (:mod:`.redaction`). Used by the web and the workers alike.

May import: schemas only (it sits at the bottom of the workers' layers).
"""
