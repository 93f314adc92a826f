# Two commands do all the set-up: `make demo` runs the main job on the embedded data,
# `make test` runs the test suite. Each creates .venv and installs what it needs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(CURDIR)/$(VENV)/bin
AS_OF  ?= 2017-12-01

# CLI runs, the daemon and the web UI share this one persistent instance.
export DAGSTER_HOME ?= $(CURDIR)/data/dagster_home
export PATH := $(BIN):$(PATH)

DG := dagster
MODULE := -m propensity_assets.definitions

.PHONY: install demo test dev mlflow-ui benchmark clean

$(VENV)/.installed: pyproject.toml
	@command -v java >/dev/null || { echo "Java 17 is required for Spark (java not found on PATH)"; exit 1; }
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python >= 3.11 is required"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	touch $@

install: $(VENV)/.installed $(DAGSTER_HOME)/dagster.yaml

$(DAGSTER_HOME)/dagster.yaml:
	mkdir -p $(DAGSTER_HOME)
	ln -sf $(CURDIR)/dagster.yaml $@

## demo: ingest the embedded data, then features for $(AS_OF) across all product groups
demo: install
	propensity-assets sync-groups
	$(DG) job execute $(MODULE) -j ingest_job
	$(DG) asset materialize $(MODULE) --select household_features --partition $(AS_OF)
	$(DG) asset materialize $(MODULE) --select group_features \
	    --partition-range "$$(propensity-assets partition-range $(AS_OF))"
	propensity-assets summary --as-of $(AS_OF)

## test: the whole suite (real Spark, MLflow and Dagster; about 10 minutes on 2 cores)
test: install
	$(BIN)/pytest -q

## dev: the Dagster web UI and daemon (schedules, sensors) on http://localhost:3000
dev: install
	$(DG) dev -w workspace.yaml

benchmark: install
	$(BIN)/python benchmarks/features_benchmark.py

clean:
	rm -rf data/lake data/mlflow data/dagster_home
