# Restoration Desk. `make run` starts the product; `make test` runs the tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
STAMP := $(VENV)/.installed
LEARNED := $(VENV)/.learned
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint format clean venv bench-poller bench-latency bench-engine bench-dashboard bench-zip emulator home-example screenshots

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

# The optional learned model (docs/local-engine.md); make bench-engine measures both paths.
$(LEARNED): $(STAMP)
	$(BIN)/pip install --quiet -e '.[dev,learned]'
	touch $(LEARNED)

run: $(STAMP)
	$(PY) manage.py migrate --no-input
	$(PY) manage.py demo_user
	@echo "Starting web, worker and beat. Open http://$(HOST):$(PORT)/ ; Ctrl-C stops all three."
	@# honcho runs the Procfile: one Ctrl-C stops every process (SIGTERM, SIGKILL after 5 s).
	@# --env /dev/null: a production .env next to docker-compose.yml is not for make run.
	@HOST=$(HOST) PATH="$(abspath $(BIN)):$$PATH" exec $(BIN)/honcho --env /dev/null start --port $(PORT)

test: $(STAMP)
	$(BIN)/pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) var

bench-poller: $(STAMP)
	$(PY) benchmarks/bench_poller.py $(BENCH_ARGS)

bench-latency: $(STAMP)
	$(PY) benchmarks/bench_latency.py $(BENCH_ARGS)

# Quality, speed and memory of the built-in engine on real photographs (docs/local-engine.md),
# on the classical path and on the learned one, which it installs first.
bench-engine: $(LEARNED)
	$(PY) benchmarks/bench_engine.py $(BENCH_ARGS)

# The dashboard's pages on 100,000 tasks in PostgreSQL against 1,000 (docs/benchmarks.md).
bench-dashboard: $(STAMP)
	$(PY) benchmarks/bench_dashboard.py $(BENCH_ARGS)

# A batch's ZIP download: first bytes, throughput and peak memory (docs/benchmarks.md).
bench-zip: $(STAMP)
	$(PY) benchmarks/bench_zip.py $(BENCH_ARGS)

# The home page's before/after example (static/img/example-*.jpg), made by the built-in engine.
home-example: $(STAMP)
	$(PY) benchmarks/home_example.py

# The browser tests, keeping each page's screenshot in docs/screenshots/ (the README shows them).
screenshots: $(STAMP)
	DESK_SCREENSHOTS=docs/screenshots $(BIN)/pytest tests/browser $(PYTEST_ARGS)

# The PicWish emulator (docs/emulator.md), e.g. make emulator EMULATOR_ARGS="--qps 1 --seed 3".
EMULATOR_PORT ?= 8100
emulator: $(STAMP)
	$(PY) -m emulator --port $(EMULATOR_PORT) $(EMULATOR_ARGS)
