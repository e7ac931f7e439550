# One entry point for setup, demo, tests, lint, docs and the benchmark.
# `make help` lists the targets. ENV picks the environment: embedded (default),
# services (MariaDB + S3 server + PostgreSQL on loopback) or production.

SHELL := /bin/bash
ENV ?= embedded
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(CURDIR)/$(VENV)/bin/python
DAYS ?= 3
SIZE ?= 1000
START ?= 2026-10-30
ROWS ?= 1000000
REPEAT ?= 3
AIRFLOW_PORT ?= 8081
DOCS_PORT ?= 8080
EXECUTOR ?= local
# pytest-xdist workers of `make test`: each test file runs whole on one worker (its own S3 server)
WORKERS ?= 2

export UV_PYTHON_DOWNLOADS := never
export PIPELINE_ENV := $(ENV)
export AIRFLOW_HOME := $(CURDIR)/.airflow
export AIRFLOW__CORE__DAGS_FOLDER := $(CURDIR)/dags
export AIRFLOW__CORE__LOAD_EXAMPLES := False
export AIRFLOW__COSMOS__ENABLE_TELEMETRY := False
export DO_NOT_TRACK := 1
export SCARF_NO_ANALYTICS := true
export DBT_SEND_ANONYMOUS_USAGE_STATS := False
export DBT_PROFILES_DIR := $(CURDIR)
# OpenLineage events: off by default; `make demo OPENLINEAGE=on` writes them to
# .data/$(ENV)/openlineage.jsonl (AIRFLOW__OPENLINEAGE__TRANSPORT picks another transport).
OPENLINEAGE ?= off
export AIRFLOW__OPENLINEAGE__DISABLED := $(if $(filter on,$(OPENLINEAGE)),false,true)
export AIRFLOW__OPENLINEAGE__TRANSPORT ?= {"type": "file", "log_file_path": "$(CURDIR)/.data/$(ENV)/openlineage.jsonl", "append": true}

WITH_ENV := $(PY) -m ingestion exec --
DBT := $(WITH_ENV) $(CURDIR)/$(VENV)/bin/dbt

.PHONY: help setup demo test test-setup test-fast lint format docs manifest bench bench-chunks s3-start s3-stop airflow-ui clean

help: ## list the targets
	@grep -E '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'
	@echo "  variables: ENV=embedded|services|production DAYS=$(DAYS) SIZE=$(SIZE) START=$(START) ROWS=$(ROWS) REPEAT=$(REPEAT) EXECUTOR=local|celery"

$(VENV)/.installed: requirements.txt pyproject.toml scripts/setup.sh
	bash scripts/setup.sh "$(PYTHON)" "$(VENV)"
	@touch $@

setup: $(VENV)/.installed ## create .venv and install pinned dependencies (+ system packages)

manifest: setup ## dbt parse: build dbt_project/target/manifest.json for Cosmos
	cd dbt_project && $(DBT) parse --quiet

demo: setup ## generate demo data, run the DAG for DAYS intervals, print mau_summary (EXECUTOR=celery: scheduler + 2 Celery workers)
	bash scripts/demo.sh "$(ENV)" "$(DAYS)" "$(SIZE)" "$(START)" "$(EXECUTOR)"

test-setup: setup ## system packages only the tests need (Chromium and its driver for browser tests)
	bash scripts/setup-test.sh

test: manifest test-setup ## run the whole test suite (unit, integration, DAG, end to end, browser; WORKERS= parallel pytest-xdist workers)
	$(PY) -m pytest -q -n $(WORKERS) --dist loadfile $(PYTEST_ARGS)

test-fast: manifest ## skip the slow end-to-end DAG runs
	$(PY) -m pytest -q -m "not e2e" $(PYTEST_ARGS)

lint: setup ## ruff (lint + format check) and sqlfluff on the dbt models
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m ingestion --env embedded init-warehouse > /dev/null  # the dbt templater opens the dev target
	cd dbt_project && $(WITH_ENV) $(CURDIR)/$(VENV)/bin/sqlfluff lint models
	cd dbt_project && $(CURDIR)/$(VENV)/bin/sqlfluff lint --templater jinja --disregard-sqlfluffignores tests

format: setup ## apply ruff format and fixes
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

docs: manifest ## generate and serve the dbt docs on http://127.0.0.1:$(DOCS_PORT)
	cd dbt_project && $(DBT) docs generate && $(DBT) docs serve --port $(DOCS_PORT) --host 127.0.0.1

bench: setup ## benchmark extract/load against SqlToS3Operator and client floors (ROWS=, REPEAT=)
	$(PY) bench/run.py --rows $(ROWS) --repeat $(REPEAT)

bench-chunks: setup ## chunked extract of a ROWS-row MariaDB table with 1, 2 and 4 chunks in parallel processes
	$(PY) -m bench.chunks --rows $(ROWS) --repeat $(REPEAT)

s3-start: setup ## start the loopback S3 API server (services environment)
	$(PY) -m devtools.s3_server start

s3-stop: ## stop the loopback S3 API server
	$(PY) -m devtools.s3_server stop

airflow-ui: setup ## the Airflow UI (no login), scheduler and DAG processor on http://127.0.0.1:$(AIRFLOW_PORT)
	bash scripts/airflow-ui.sh "$(ENV)" "$(AIRFLOW_PORT)"

clean: ## remove generated data, Airflow home and dbt artifacts (keeps .venv)
	rm -rf .data .airflow .airflow-celery dbt_project/target dbt_project/logs logs
