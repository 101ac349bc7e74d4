# Everything a fresh machine with python3 and make needs: `make run`, `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
export QUANT_ASSETS_LAKEHOUSE ?= $(CURDIR)/data/lakehouse
export DAGSTER_HOME ?= $(CURDIR)/data/dagster_home
# Dagster hands the event log a run's planned partitions, and a step's materialisations over a
# partition range, in batches of this many events; the local instance writes a batch in one
# transaction (deploy/local/dagster.yaml), dagster-postgres materialisations in one statement.
export DAGSTER_EVENT_BATCH_SIZE ?= 1000

.PHONY: install browser postgres run test ui bench clean

install: $(STAMP)

# Dagster's instance (run history, event log) for `make run` and `make ui`, configured like
# production: queued runs, the screener pool, run retries (deploy/local/dagster.yaml).
$(DAGSTER_HOME)/dagster.yaml: deploy/local/dagster.yaml
	mkdir -p "$(DAGSTER_HOME)"
	cp deploy/local/dagster.yaml "$@"

$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c requirements.lock -e .
	touch $(STAMP)

# The runtime plus the `test` extra (pytest, selenium, import-linter).
$(TEST_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c requirements.lock -e '.[test]'
	touch $(TEST_STAMP)

run: $(STAMP) $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/quant-assets run

# Debian's Chromium and its driver for the browser test (quant_assets_tests/orchestration/
# test_browser.py). Installed only where missing and only as root with apt-get; otherwise this
# says why and the test skips with its reason.
browser:
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then :; \
	elif [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then \
		echo "browser test will skip: chromium/chromedriver missing and cannot apt-get install them (needs root and apt-get)"; \
	else \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) \
			|| echo "browser test will skip: apt-get install chromium chromium-driver failed"; \
	fi

# Debian's PostgreSQL server for the tests that put Dagster's instance on Postgres
# (quant_assets_tests/servers.py starts a throwaway cluster on 127.0.0.1 and deletes it after).
# Installed only where missing and only as root with apt-get; otherwise this says why and those
# tests skip with their reason.
postgres:
	@if ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || command -v pg_ctl >/dev/null; then :; \
	elif [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then \
		echo "Postgres tests will skip: the PostgreSQL server is missing and cannot apt-get install it (needs root and apt-get)"; \
	else \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null) \
			|| echo "Postgres tests will skip: apt-get install postgresql failed"; \
	fi

test: $(TEST_STAMP) browser postgres
	$(BIN)/python -m pytest -q

ui: $(STAMP) $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

bench: $(STAMP)
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) data/lakehouse data/dagster_home
