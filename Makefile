# Two commands do all set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test install install-test chromium lint bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e ".[test]"
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

# Debian's chromium drives the browser tests (never `playwright install`).
chromium:
	@if [ ! -x /usr/bin/chromium ]; then \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium chromium-driver; \
	fi

# One server process by default: heavy jobs live in the process that took them, and uvicorn's
# processes share one socket with no sticky routing, so with several a browser's job requests
# could reach a process that does not hold its job. `WORKERS=$(nproc) make run` serves live
# sessions from one process per core (any process serves any session) for a large class;
# docs/protocol.md "Running several processes".
WORKERS ?= 1

# the console script of the package (app/cli.py); `$(BIN)/backprop-lab serve --help` lists
# every setting with its environment variable
run: install
	$(BIN)/backprop-lab serve --host $(HOST) --port $(PORT) --workers $(WORKERS)

test: install-test chromium
	$(BIN)/python -m pytest

lint: install-test
	$(BIN)/ruff check .

bench: install-test chromium
	$(BIN)/python benchmarks/engine.py
	$(BIN)/python benchmarks/frames.py
	$(BIN)/python benchmarks/browser.py
	$(BIN)/python benchmarks/jobs.py
	$(BIN)/python benchmarks/load.py
