"""Developer tooling (not part of the distribution): a private Redis, `make demo`, `make run`."""
