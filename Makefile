# Everything a fresh machine with python3 and make needs: `make run`, `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export QUANT_ASSETS_LAKEHOUSE ?= $(CURDIR)/data/lakehouse
export DAGSTER_HOME ?= $(CURDIR)/data/dagster_home

.PHONY: install run test ui bench clean

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

run: $(STAMP) $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/quant-assets run

test: $(STAMP)
	$(BIN)/python -m pytest -q

ui: $(STAMP) $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

bench: $(STAMP)
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) data/lakehouse data/dagster_home
