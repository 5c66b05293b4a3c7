"""The read API and the OpenAPI description of the web.

It owns ``GET /recordings`` and ``GET /recordings/{sid}`` (:mod:`.views`, behind
``API_TOKEN``) and ``GET /openapi.json`` (:mod:`.openapi`, its paths in :mod:`.openapi_paths`).

May import: schemas, the shared modules of :mod:`webhooks` (``app_state``, ``errors``),
:mod:`workers.service.reads` and :mod:`workers.errors`; never the CLI. One exception:
the OpenAPI describes every endpoint of the web, the callback's and ``/metrics`` among them,
so :mod:`.openapi_paths` takes their paths and answer headers from :mod:`webhooks.intake.views`
and :mod:`webhooks.metrics`, where they are defined (it uses nothing else of them).
"""
