# The commands a user needs. Everything installs into .venv (and tools/asyncapi/node_modules).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install up test lint bench asyncapi-tools clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

# The official AsyncAPI parser and HTML generator (npm); the asyncapi test needs them.
asyncapi-tools:
	@if command -v npm >/dev/null 2>&1; then \
		cd tools/asyncapi && npm ci --no-audit --no-fund --loglevel=error; \
	elif [ "$$CI" = "true" ]; then echo "npm is required in CI" >&2; exit 1; \
	else echo "npm not found: the AsyncAPI tooling test will be skipped"; fi

## Run the whole system on the embedded default (broker, topics; worker and edge as they land).
up: install
	$(BIN)/chat-events up

lint: install
	$(BIN)/ruff check chat_events tests benchmarks
	$(BIN)/ruff format --check chat_events tests benchmarks
	$(BIN)/mypy

## Install everything and run the full test suite (unit + integration against a real broker).
test: install asyncapi-tools lint
	$(BIN)/chat-events schemas check
	$(BIN)/pytest -q

bench: install
	$(BIN)/python -m benchmarks.bench_codec
	$(BIN)/python -m benchmarks.bench_producer
	$(BIN)/python -m benchmarks.bench_worker
	$(BIN)/python -m benchmarks.bench_edge

clean:
	rm -rf $(VENV) tools/asyncapi/node_modules tools/asyncapi/out .chat-events
