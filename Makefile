# Every target bootstraps .venv itself, so a fresh clone needs only `make run` / `make test`.
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' && echo $$p && break; done)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export FLASK_APP := wsgi:app

.PHONY: run test worker scheduler dingtalk-stream bench lint format migrate seed clean

$(STAMP): requirements.txt requirements-dev.txt
	@test -n "$(PYTHON)" || { echo "Python 3.11+ is required"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	@touch $(STAMP)

## Serve http://127.0.0.1:5000 on SQLite with inline jobs (migrates and loads demo data first).
run: $(STAMP)
	$(PY) -m flask db upgrade
	$(PY) -m flask seed-demo
	$(PY) -m flask run --host 127.0.0.1 --port $${PORT:-5000}

## The whole test suite (uses DATABASE_URL / REDIS_URL when set, else SQLite + in-process store).
test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

## RQ workers for all queues, with the scheduler (needs REDIS_URL).
worker: $(STAMP)
	$(PY) -m jobs.worker

## DingTalk robot messages over Stream mode (a second process; needs DINGTALK_APP_KEY/SECRET).
dingtalk-stream: $(STAMP)
	$(PY) -m bot.dingtalk_stream

## The periodic scheduler alone (make worker already starts one; several are safe).
scheduler: $(STAMP)
	$(PY) -m jobs.scheduler

## Benchmarks (PostgreSQL + Redis, gunicorn); prints ratios against baselines.
bench: $(STAMP)
	$(PY) -m bench

migrate: $(STAMP)
	$(PY) -m flask db upgrade

seed: $(STAMP)
	$(PY) -m flask seed-demo

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) instance .pytest_cache
