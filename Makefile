# The two commands a new user needs: `make run` and `make test`.
# Everything they need is installed here: a virtualenv with the pinned ranges,
# and Azurite from the pinned package-lock.json. PostgreSQL is found or started
# by the tests themselves (tests/fixtures/postgres.py).

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=
PORT ?= 7071

.PHONY: run test fuzz lint typecheck lint-infra venv node graphsim bench fixture clean help

help:
	@echo "make run [PORT=7071] - local Functions host on http://127.0.0.1:PORT: the demo against the Graph"
	@echo "                       simulator when local.settings.json has no CLIENT_ID, else the app for real"
	@echo "make test            - install what is needed, lint, and run every test against real services"
	@echo "                       (the first run downloads and installs about 1 GB: .venv ~580 MB,"
	@echo "                       .venv-infra ~290 MB, node_modules ~190 MB; about 7 minutes)"
	@echo "make lint            - ruff and mypy over the Python code (mypy strict on shared/; pyproject.toml)"
	@echo "make typecheck       - mypy: strict on shared/, basic on graphsim/ and devhost/ (pyproject.toml)"
	@echo "make lint-infra      - check the infrastructure templates (infra/check.sh: parse, checkov in .venv-infra)"
	@echo "make graphsim        - the Graph simulator alone, with a demo tenant"
	@echo "make bench           - benchmarks (figures printed side by side)"
	@echo "make fixture         - CREATE TABLE of microsoft_calendar_user_v1 (python -m shared fixture --help)"
	@echo "make clean           - remove what make installed and the local state: .venv, .venv-infra,"
	@echo "                       node_modules, .data (the demo's and the embedded rows), caches"
	@echo "make fuzz            - the HTTP-trigger fuzz test at length: FUZZ_EXAMPLES (10,000) cases per anonymous"
	@echo "                       endpoint, FUZZ_KEYED_EXAMPLES (1,000) per function-key endpoint"

$(BIN)/.installed: requirements.txt requirements-dev.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

venv: $(BIN)/.installed

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

node: node_modules/.installed

run: venv
	$(BIN)/python -m devhost --port $(PORT)

test: venv node lint lint-infra
	$(BIN)/python -m pytest $(PYTEST_ARGS)

FUZZ_EXAMPLES ?= 10000
FUZZ_KEYED_EXAMPLES ?= 1000

fuzz: venv
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) FUZZ_KEYED_EXAMPLES=$(FUZZ_KEYED_EXAMPLES) \
		$(BIN)/python -m pytest tests/fuzz -q -s -o timeout=0 $(PYTEST_ARGS)

lint: venv typecheck
	$(BIN)/ruff check .

typecheck: venv
	$(BIN)/mypy

lint-infra:
	@if [ -x infra/check.sh ]; then infra/check.sh; else echo "lint-infra: no infra/check.sh yet"; fi

graphsim: venv
	$(BIN)/python -m graphsim --demo

bench: venv node
	@for script in bench/bench_*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

fixture: venv
	$(BIN)/python -m shared fixture microsoft_calendar_user_v1

clean:
	rm -rf $(VENV) .venv-infra node_modules .data .pytest_cache .ruff_cache
