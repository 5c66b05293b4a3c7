# roomrec: `make demo` to see it work, `make test` to prove it.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: help install services demo run test test-unit test-integration chaos bench lint format clean clean-data

help:
	@echo "make demo              run a simulated Twilio room through the whole stack"
	@echo "make test              install everything needed, then run every test"
	@echo "make services          install the RabbitMQ and PostgreSQL the tests start (as root)"
	@echo "make run               start web (gunicorn) and a worker for real Twilio, from .env"
	@echo "make lint              ruff, ruff format --check, mypy, import contracts"
	@echo "make chaos             the real stack under injected faults (on Redis, RabbitMQ and Sentinel: about 4 minutes)"
	@echo "make bench             the benchmarks of BENCHMARKS.md (about ten minutes)"
	@echo "make test-unit | test-integration"
	@echo "make clean             remove the virtualenv, caches and .run/ (never data/)"
	@echo "make clean-data        DELETE data/: the spool (maybe the only copy of events), store, archive"

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "roomrec needs Python >= 3.11")'
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade "pip>=25.1"
	$(BIN)/python -m pip install --quiet -e . --group dev
	@touch $@

install: $(STAMP)

# The binaries of the RabbitMQ nodes and the PostgreSQL that the tests start for themselves on
# free ports (never the machine's services): Debian's packages, installed when missing.
services:
	@bash devtools/ensure_services.sh

demo: $(STAMP)
	$(BIN)/python -m devtools.demo

run: $(STAMP)
	$(BIN)/python -m devtools.run

test: $(STAMP) services
	$(BIN)/python -m pytest -p no:cacheprovider -m "not chaos_engines"

test-unit: $(STAMP) services
	$(BIN)/python -m pytest -p no:cacheprovider tests/unit tests/emulator

test-integration: $(STAMP) services
	$(BIN)/python -m pytest -p no:cacheprovider tests/integration

chaos: $(STAMP) services
	$(BIN)/python -m pytest -p no:cacheprovider -m chaos tests/chaos -s

bench: $(STAMP)
	$(BIN)/python -m bench

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Never data/: the web's spool may hold the only copy of a callback not yet queued.
clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis *.egg-info .run

# Asks first (CONFIRM=yes skips the question); without a terminal to answer, deletes nothing.
clean-data:
	@echo "make clean-data DELETES data/: the web's spool (callbacks not yet queued, perhaps"
	@echo "their only copy), the SQLite store, the file archive and beat's schedule."
	@if [ "$(CONFIRM)" != "yes" ]; then \
		printf 'Type "delete" to delete data/: '; read answer || answer=; \
		if [ "$$answer" != "delete" ]; then echo "data/ kept."; exit 1; fi; \
	fi
	rm -rf data
