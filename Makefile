# The two commands of the README: `make up` runs Skyline, `make test` runs the suite.
# Both create .venv, install the locked dependencies and the dashboard's htmx on first use
# (idempotent); `make test` also installs Debian's Chromium for the browser tests if missing.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CHROMIUM := /usr/bin/chromium

.PHONY: up test lint lock clean chromium

$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.lock
	$(BIN)/python -m pip install -q --no-deps -e .
	$(BIN)/python -m dashboard.assets
	touch $(STAMP)

up: $(STAMP)
	$(BIN)/skyline up --demo

test: $(STAMP) lint chromium
	$(BIN)/pytest $(PYTEST_ARGS)

# The browser tests drive Debian's Chromium (Playwright cannot download its own here).
chromium:
	test -x $(CHROMIUM) || (apt-get update -q && apt-get install -y -q chromium)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Refresh requirements.lock from pyproject.toml's ranges in a scratch environment.
lock:
	rm -rf /tmp/skyline-lock && $(PYTHON) -m venv /tmp/skyline-lock
	/tmp/skyline-lock/bin/pip install -q --upgrade pip
	/tmp/skyline-lock/bin/pip install -q -e '.[test]'
	/tmp/skyline-lock/bin/pip freeze --exclude-editable | grep -v '^-e ' > requirements.lock

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
