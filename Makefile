# contextkb: `make run` starts everything (development), `make serve` runs it for real on one
# host, `make status` shows each process, `make test` runs the whole suite.
# Only Python >= 3.12 is needed on the machine; everything else is installed into .venv/.

SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
PORT ?= 8000
# Django 6 needs Python 3.12+: take the first such interpreter on PATH (or under pyenv).
PYTHON ?= $(shell for c in python3.13 python3.12 python3 $$(ls -d $$HOME/.pyenv/versions/3.1[2-9]*/bin/python3 2>/dev/null | sort -rV); do \
	if $$c -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1; then echo $$c; break; fi; done)

.PHONY: install run serve status stop test lint format migrate seed db-start db-stop clean help browser
.DEFAULT_GOAL := help

help:  ## Show the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s $$'\t'

$(BIN)/.installed: pyproject.toml
	@if [ -z "$(PYTHON)" ]; then echo "contextkb needs Python 3.12 or newer (Django 6); none found on PATH." >&2; exit 1; fi
	@echo "==> Creating $(VENV) with $(PYTHON)"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

install: $(BIN)/.installed  ## Create the virtualenv and install the project

migrate: install  ## Apply database migrations (starts the embedded database if needed)
	$(PY) manage.py migrate --no-input

seed: migrate  ## Create the demo space and users
	$(PY) manage.py seed_demo

run: seed  ## Development: web (runserver), MCP, Celery worker and beat, embedded database, supervised; Ctrl-C stops all
	@echo ""
	@echo "  contextkb is starting at http://localhost:$(PORT)/  (log in as demo / contextkb-demo)"
	@echo "  Admin: http://localhost:$(PORT)/admin/   make status: each process.   Ctrl-C stops everything."
	@echo ""
	WEB_PORT=$(PORT) CONTEXTKB_SITE_URL=$${CONTEXTKB_SITE_URL:-http://localhost:$(PORT)} $(PY) -m apps.core.launcher run

serve: install  ## Production on one host: gunicorn, MCP on uvicorn workers, worker, beat, supervised (needs DJANGO_SECRET_KEY, DJANGO_ALLOWED_HOSTS)
	WEB_PORT=$(PORT) $(PY) -m apps.core.launcher serve

status: install  ## Show the state of each process started by `make run` / `make serve`
	@$(PY) -m apps.core.launcher status

stop: install  ## Stop what `make run` / `make serve` started (gracefully), from another terminal
	@$(PY) -m apps.core.launcher stop

lint: install  ## ruff check + format check + module/function size + mypy on apps/ + migrations check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(PY) .ci/code_shape.py apps
	@# The django-stubs plugin imports the settings; a DATABASE_URL (never connected to) keeps
	@# that from starting the embedded PostgreSQL. Incremental: .mypy_cache/ makes reruns fast.
	DATABASE_URL=$${DATABASE_URL:-postgres://mypy@localhost/unused} $(BIN)/mypy apps
	$(PY) manage.py makemigrations --check --dry-run

format: install  ## Format the code with ruff
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: install browser  ## Lint, then the whole test suite on the embedded database
	@was_running=0; $(PY) -m apps.core.embedded_db status >/dev/null 2>&1 && was_running=1; \
	status=0; \
	$(MAKE) --no-print-directory lint || status=$$?; \
	if [ $$status -eq 0 ]; then $(BIN)/pytest $(PYTEST_ARGS) || status=$$?; fi; \
	if [ -z "$$DATABASE_URL" ] && [ $$was_running -eq 0 ]; then $(PY) -m apps.core.embedded_db stop >/dev/null; fi; \
	exit $$status

# The browser tests drive Debian's Chromium (never Playwright's own download). Install it when
# missing; if that is impossible the e2e tests skip loudly (and fail when CI is set).
browser:  ## Locate or install Chromium for the end-to-end tests
	@if command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ]; then exit 0; fi; \
	echo "==> Installing Chromium for the browser tests (apt-get)"; \
	if [ "$$(id -u)" = 0 ]; then SUDO=; elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo -n"; \
	else echo "!! Cannot install Chromium (not root, no sudo): the e2e tests will skip (and fail when CI is set)" >&2; exit 0; fi; \
	if command -v apt-get >/dev/null 2>&1; then \
		($$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null) \
		|| echo "!! apt-get could not install chromium: the e2e tests will skip (and fail when CI is set)" >&2; \
	else echo "!! No apt-get here: install Chromium yourself; the e2e tests will skip (and fail when CI is set)" >&2; fi

db-start: install  ## Start the embedded PostgreSQL (normally automatic)
	$(PY) -m apps.core.embedded_db start

db-stop: install  ## Stop the embedded PostgreSQL
	$(PY) -m apps.core.embedded_db stop

clean: db-stop  ## Stop the database and delete var/ (all local data!)
	rm -rf var
