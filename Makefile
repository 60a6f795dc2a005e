# The commands a user needs. Everything installs into .venv (and tools/asyncapi/node_modules).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install up test lint bench asyncapi-tools engines clean

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

# Real Apache Kafka and Cassandra (Maven, into ~/.cache/chat-events/engines) for `up` and the
# tests. Without Java 17+ or Maven this says why and the real-engine tests are skipped; with
# CI=true it fails.
engines: install
	@if $(BIN)/chat-events engines status >/dev/null 2>&1 || command -v mvn >/dev/null 2>&1; then \
		$(BIN)/chat-events engines fetch; \
	elif [ "$$CI" = "true" ]; then $(BIN)/chat-events engines status; exit 1; \
	else $(BIN)/chat-events engines status || true; fi

## Run the whole system: real Kafka when Java 17+ and Maven are here, else the embedded stack
## (--stack embedded|kafka|kafka-cassandra picks one).
up: install
	$(BIN)/chat-events up $(UP_ARGS)

lint: install
	$(BIN)/ruff check chat_events tests benchmarks
	$(BIN)/ruff format --check chat_events tests benchmarks
	$(BIN)/mypy

## Install everything and run the full test suite: unit, the store contract on SQLite and real
## Cassandra, integration on the embedded broker and on real Kafka + Cassandra.
test: install asyncapi-tools lint engines
	$(BIN)/chat-events schemas check
	$(BIN)/pytest -q --durations=15

bench: install
	$(BIN)/python -m benchmarks.bench_codec
	$(BIN)/python -m benchmarks.bench_producer
	$(BIN)/python -m benchmarks.bench_worker
	$(BIN)/python -m benchmarks.bench_edge

clean:
	rm -rf $(VENV) tools/asyncapi/node_modules tools/asyncapi/out .chat-events
