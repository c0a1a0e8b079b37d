# The two commands of the README: `make up` runs Skyline, `make test` runs the suite.
# Both create .venv and install the locked dependencies on first use (idempotent).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: up test lint lock clean

$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.lock
	$(BIN)/python -m pip install -q --no-deps -e .
	touch $(STAMP)

up: $(STAMP)
	$(BIN)/skyline up --demo

test: $(STAMP) lint
	$(BIN)/pytest $(PYTEST_ARGS)

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
