# slawatch: `make run` brings the stack up, `make test` runs the suite.
# Both create .venv with the pinned dependencies (constraints.txt) on first use.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: venv run test test-unit test-integration test-kafka lint format bench clean

# Progress lines with elapsed seconds: the first install takes about a minute.
$(STAMP): pyproject.toml constraints.txt
	@start=$$(date +%s); \
	echo "slawatch: [setup] $(VENV): installing $$(grep -c '==' constraints.txt) pinned packages (first run: about a minute)"; \
	{ test -x $(BIN)/python || $(PYTHON) -m venv $(VENV); } && \
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]' && \
	touch $(STAMP) && \
	echo "slawatch: [setup] $(VENV) ready in $$(( $$(date +%s) - start )) s"

venv: $(STAMP)

run: venv
	$(BIN)/slawatch up

test: venv
	$(BIN)/pytest $(PYTEST_ARGS)

test-unit: venv
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

test-integration: venv
	$(BIN)/pytest -m "integration or e2e" $(PYTEST_ARGS)

# The same tests on a 3-node Apache Kafka cluster (fetched once with mvn; needs Java 17+).
test-kafka: venv
	SLAWATCH_TEST_BROKER=kafka $(BIN)/pytest -m "integration or e2e or chaos" $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: venv
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .slawatch .pytest_cache .mypy_cache .ruff_cache
