"""roomrec's benchmark harness (``make bench``, ``python -m bench``): the figures of issue 5,
each a ratio against a baseline measured side by side on the same machine in the same run.

One module per benchmark (``ingest``, ``drain``, ``latency``, ``memory``, ``archive``,
``concurrency``), each with its method in its docstring; ``env`` holds what they share (a
private append-only Redis, the Twilio emulator, a bare forward receiver), ``procs`` the one
command line of each process under test. Method, machine and latest figures: BENCHMARKS.md.
"""
