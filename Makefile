# Restoration Desk. `make run` starts the product; `make test` runs the tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint format clean venv bench-poller emulator

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(PY) manage.py migrate --no-input
	$(PY) manage.py demo_user
	@echo "Starting web, worker and beat. Open http://$(HOST):$(PORT)/ ; Ctrl-C stops all three."
	@trap 'kill 0' INT TERM; \
	$(BIN)/celery -A config worker --loglevel=INFO --without-mingle --without-gossip --concurrency=2 & \
	$(BIN)/celery -A config beat --loglevel=WARNING & \
	$(PY) manage.py runserver $(HOST):$(PORT) --noreload & \
	wait

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

# The PicWish emulator (docs/emulator.md), e.g. make emulator EMULATOR_ARGS="--qps 1 --seed 3".
EMULATOR_PORT ?= 8100
emulator: $(STAMP)
	$(PY) -m emulator --port $(EMULATOR_PORT) $(EMULATOR_ARGS)
