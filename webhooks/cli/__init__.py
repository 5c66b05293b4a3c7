"""The operator's command line, ``flask --app webhooks <command>``.

It owns the commands (:mod:`.commands`: ``send-test-callback``, ``reconcile``;
:mod:`.recordings`; :mod:`.deadletters`; :mod:`.db`), what they share (:mod:`.support`:
settings, exit codes, one-line errors, JSON and progress output) and the signed test callbacks
(:mod:`.testcallback`). A command parses its options, opens the clients it needs, calls one
operation of :mod:`workers.service.operations` and prints the result.

May import: schemas, the shared modules of :mod:`webhooks` (``app_state``),
:mod:`workers.service` and :mod:`workers.errors`; never the read API. One exception: a test
callback is signed as Twilio signs it, so :mod:`.testcallback` takes the signature's header
name from :mod:`webhooks.intake.signature`, the module that checks it.
"""
