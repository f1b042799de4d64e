# The two commands a new user needs: `make run` and `make test`.
# Everything they need is installed here: a virtualenv with the pinned ranges,
# and Azurite from the pinned package-lock.json. PostgreSQL is found or started
# by the tests themselves (tests/fixtures/postgres.py).

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: run test fuzz lint lint-infra venv node graphsim bench fixture clean help

help:
	@echo "make run     - local Functions host on http://127.0.0.1:7071 (demo against the Graph simulator"
	@echo "               when no credentials are configured)"
	@echo "make test    - install what is needed, then lint and run every test against real services"
	@echo "make graphsim- the Graph simulator alone, with a demo tenant"
	@echo "make bench   - benchmarks (figures printed side by side)"
	@echo "make fuzz    - the HTTP-trigger fuzz test at length: FUZZ_EXAMPLES (10,000) cases per anonymous"
	@echo "               endpoint, FUZZ_KEYED_EXAMPLES (1,000) per function-key endpoint"

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
	$(BIN)/python -m devhost

test: venv node lint lint-infra
	$(BIN)/python -m pytest $(PYTEST_ARGS)

FUZZ_EXAMPLES ?= 10000
FUZZ_KEYED_EXAMPLES ?= 1000

fuzz: venv
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) FUZZ_KEYED_EXAMPLES=$(FUZZ_KEYED_EXAMPLES) \
		$(BIN)/python -m pytest tests/fuzz -q -s -o timeout=0 $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check .

lint-infra:
	@if [ -x infra/check.sh ]; then infra/check.sh; else echo "lint-infra: no infra/check.sh yet"; fi

graphsim: venv
	$(BIN)/python -m graphsim --demo

bench: venv node
	@for script in bench/bench_*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

fixture: venv
	$(BIN)/python -m shared fixture microsoft_calendar_user_v1

clean:
	rm -rf $(VENV) node_modules .data .pytest_cache .ruff_cache
