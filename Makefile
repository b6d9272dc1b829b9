# Two entry points a new user needs, both from a fresh clone: `make demo` and `make test`.
# The virtual environment is made on first use.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean lock

# Every install is the tested one: exact versions with hashes from requirements.lock (runtime,
# test tools and the build back-end), then GT Mailer itself without fetching anything more.
$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --require-hashes -r requirements.lock
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/mailer demo

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/pytest -n 2

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# After changing dependencies in pyproject.toml: pin and hash them again (needs uv).
lock:
	uv pip compile pyproject.toml build-requirements.in --extra test --generate-hashes \
		--python-version 3.11 --universal -q -o requirements.lock

clean:
	rm -rf $(VENV) var build *.egg-info
