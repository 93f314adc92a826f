# Two commands do all the set-up: `make demo` runs the main job on the embedded data,
# `make test` runs the test suite. Each creates .venv and installs what it needs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(CURDIR)/$(VENV)/bin
AS_OF  ?= 2017-12-01

# CLI runs, the daemon and the web UI share this one persistent instance.
export DAGSTER_HOME ?= $(CURDIR)/data/dagster_home
export PATH := $(BIN):$(PATH)
# A single-run backfill records one "planned" event per asset instead of one per
# partition: every event is a write to the instance, and a year of group features has
# thousands of partitions. (Partitions of a failed run then show as missing, not failed.)
export DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS ?= true
# OpenMP's wait policy trades one case against the other. Threads that spin while waiting
# make LightGBM several times slower whenever another process (a busy Spark JVM, a second
# run) shares the cores, so `make dev` (concurrent runs beside a Spark Connect server) and
# `make test` wait passively. Alone, passive waiting is slower (benchmarks/RESULTS.md), so
# the demo keeps OpenMP's default: its trainings fit alone on two threads, or side by side
# on one thread each, where no thread waits for another.
dev test: export OMP_WAIT_POLICY ?= PASSIVE

SPARK_CONNECT := $(BIN)/python -m propensity_assets.deploy.spark_connect --log-dir $(CURDIR)/data/spark_connect
# $(call with_spark,PORT,COMMAND): COMMAND with SPARK_REMOTE set. That server when SPARK_REMOTE
# is already set; else a new one on PORT (0: a free one), stopped when COMMAND exits.
with_spark = if [ -n "$$SPARK_REMOTE" ]; then echo "runs use SPARK_REMOTE=$$SPARK_REMOTE"; exec $(2); \
	else exec $(SPARK_CONNECT) --port $(1) -- $(2); fi

.PHONY: install demo demo-own-data demo-init demo-ingest demo-features demo-group-features demo-ltv-labels demo-propensity-labels demo-compile \
	demo-ltv demo-propensity demo-models demo-profile demo-studies demo-decay demo-software demo-report test dev mlflow-ui spark-cluster spark-connect benchmark clean

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

## demo: the whole lifecycle on the embedded data:
##   ingest -> features -> labels -> propensity (train, vet, promote; an earlier cutoff for the
##   decay curves) beside LTV (search the permutations at 2017-09-29, score the holdout 2017-10-01)
##   -> each LTV champion's permutation refitted at 2017-12-01 -> scores at 2017-12-01
##   -> the retail campaign studies of every group beside the decay curves -> cohorts and profile
##   -> summary; the software-company incentive study runs beside the features
HISTORY_FROM ?= 2017-01-01
# The CONTRACTS §8 LTV holdout and the last training cutoff (a Friday) on or before it.
LTV_HOLDOUT ?= 2017-10-01
LTV_CUTOFF ?= 2017-09-29
# An earlier propensity model, so that the decay curves have three months of ages to show.
DECAY_CUTOFF ?= 2017-09-01
PA := propensity-assets
# Each step is a run of a named job, so the UI's Jobs pages and timeline show the demo's runs
# (`propensity-assets launch`; `dg launch` runs carry no code location: docs/operations.md).
LAUNCH := $(PA) launch
DEMO_TARGETS := demo demo-own-data demo-init demo-ingest demo-features demo-group-features demo-ltv-labels demo-propensity-labels demo-compile \
	demo-ltv demo-propensity demo-models demo-profile demo-studies demo-decay demo-software demo-report
# The embedded data ends on 2018-01-01: "today" is the holdout date, and the demo
# auto-promotes vetted models (off by default elsewhere).
$(DEMO_TARGETS): export PROPENSITY_TODAY ?= $(AS_OF)
$(DEMO_TARGETS): export PROPENSITY_AUTO_PROMOTE ?= true
# Every run of the demo reaches one Spark Connect server (a free port; stopped at the end),
# as runs under `make dev` do, instead of starting its own JVM; with SPARK_REMOTE set, that
# server. Two runs at a time wherever the graph allows (make -j2).
#
# Own data (PROPENSITY_SOURCE_DIR set): the fixed 2017 dates above are the embedded data's, so
# the demo ingests first and then takes its dates from what was ingested (`demo-dates`: the
# same rules give exactly the dates above on the embedded data). A source without a products
# file has no categories: its catalogue is the whole basket alone (CONTRACTS §2).
ifdef PROPENSITY_SOURCE_DIR
ifeq ($(wildcard $(PROPENSITY_SOURCE_DIR)/products.parquet $(PROPENSITY_SOURCE_DIR)/products.csv $(PROPENSITY_SOURCE_DIR)/products),)
export PROPENSITY_PRODUCT_GROUPS ?= $(CURDIR)/data/product_groups_all_products.yaml
endif
demo: install
	@$(call with_spark,0,$(MAKE) --no-print-directory demo-own-data)
else
demo: install
	@$(call with_spark,0,$(MAKE) --no-print-directory -j2 demo-report)
endif

# The dates come from the lake, so a failing `demo-dates` stops here instead of running 2017's.
demo-own-data: demo-ingest
	dates="$$($(PA) demo-dates)" && echo "demo dates: $$dates" && \
	    $(MAKE) --no-print-directory -j2 demo-report INGESTED=yes $$dates

# The partitions of the catalogues; this also creates the Dagster instance's databases, which
# two first runs side by side would race to create.
demo-init:
	$(PA) sync-groups
	$(PA) sync-studies

# INGESTED=yes: the own-data demo ingested already, before it could know its dates.
demo-ingest: demo-init
	$(if $(INGESTED),@echo "ingested already",$(LAUNCH) --job ingest_job)

demo-features: demo-ingest
	$(LAUNCH) --job daily_features_job --partition-range $(HISTORY_FROM)...$(AS_OF)

# From here on two runs at a time, whichever are ready: the group features, the labels and
# the BTYD baseline's one-off C compilation (`compile-btyd`) once the household features
# exist; then the propensity trainings beside the LTV search.
demo-group-features: demo-features
	$(LAUNCH) --job daily_scoring_job --assets group_features --partition-range "$$($(PA) partition-range $(HISTORY_FROM) $(AS_OF))"

demo-ltv-labels: demo-features
	$(LAUNCH) --job ltv_labels_job --partition-range "$$($(PA) partition-range $(HISTORY_FROM) $(LTV_HOLDOUT))"

demo-propensity-labels: demo-features
	$(LAUNCH) --job propensity_labels_job --partition-range "$$($(PA) partition-range $(HISTORY_FROM) $(AS_OF))"

demo-compile: demo-features
	$(PA) compile-btyd --as-of $(LTV_HOLDOUT)

# Side by side, each fit on one thread: LightGBM's threads wait for each other actively, so
# two 2-thread fits on 2 cores slow each other down many times (settings.training_threads).
demo-ltv demo-propensity: export PROPENSITY_TRAINING_THREADS ?= 1
demo-ltv: demo-group-features demo-ltv-labels demo-compile
	$(LAUNCH) --job ltv_training_job --partition-range "$$($(PA) partition-range $(LTV_CUTOFF))"
	$(LAUNCH) --job ltv_scoring_job --partition-range "$$($(PA) partition-range $(LTV_HOLDOUT))"

demo-propensity: demo-group-features demo-propensity-labels
	$(LAUNCH) --job propensity_training_job --partition-range "$$($(PA) partition-range $(DECAY_CUTOFF))" \
	    --config-json '{"ops": {"propensity_model": {"config": {"max_trials": 1}}}}'
	$(LAUNCH) --job propensity_training_job --partition-range "$$($(PA) partition-range $(AS_OF))"

# Alone again, on two threads: each LTV champion's permutation refitted at the profile's as_of,
# and the scores.
demo-models: demo-ltv demo-propensity
	$(LAUNCH) --job ltv_training_job --partition-range "$$($(PA) partition-range $(AS_OF))" \
	    --config-json '{"ops": {"ltv_model": {"config": {"from_champion": true}}}}'
	$(LAUNCH) --job daily_scoring_job --assets propensity_scores,ltv_scores --partition-range "$$($(PA) partition-range $(AS_OF))"

# The profile reads the scores and the retail studies' recommendations (`incentive__<group>`);
# then one campaign's audience (the 500 households likeliest to buy beef) and data/lake.duckdb, the lake's
# SQL catalogue (what the profile job's `sql_catalog` asset writes).
demo-profile: demo-models demo-studies
	$(LAUNCH) --job profile_job --assets customer_profile,ltv_cohorts --partition $(AS_OF)
	$(LAUNCH) --job audiences_job --partition "$(AS_OF)|beef" \
	    --config-json '{"ops": {"audiences": {"config": {"top": 500}}}}'
	$(PA) sql-catalog

# The retail studies (they read the features) beside the decay curves, then the LTV holdout
# summary, which refits BTYD for every group (printed at the end); they run after the models,
# which train without anything beside them. The studies' models fit on one thread; the curves'
# and the summary's LightGBM predictions wait passively, as under `make dev`, or their
# spinning threads slow both runs down.
demo-studies demo-decay demo-software: export OMP_WAIT_POLICY ?= PASSIVE
demo-studies: demo-models
	$(LAUNCH) --job retail_incentives_job --partition-range "$$($(PA) partition-range --groups-only)"

demo-decay: demo-models
	$(LAUNCH) --job decay_job --partition-range "$$($(PA) partition-range --groups-only)"
	mkdir -p data/reports
	$(PA) summary --as-of $(LTV_HOLDOUT) > data/reports/summary-$(LTV_HOLDOUT).txt

# The software-company study reads none of the retail data: it runs beside the features.
demo-software: demo-init
	$(LAUNCH) --job incentives_job --partition software_company

demo-report: demo-profile demo-decay demo-software
	@cat data/reports/summary-$(LTV_HOLDOUT).txt
	$(PA) summary --as-of $(AS_OF)
	$(PA) incentives software_company
	$(PA) retail

## mlflow-ui: the MLflow UI on http://localhost:5000 (runs, registered models, aliases)
mlflow-ui: install
	$(BIN)/mlflow ui --backend-store-uri sqlite:///$(CURDIR)/data/mlflow/mlflow.db \
	    --default-artifact-root $(CURDIR)/data/mlflow/artifacts --host 127.0.0.1 --port 5000

## test: the whole suite (real Spark, MLflow and Dagster; its time on 2 cores: benchmarks/RESULTS.md),
##   ending with its 25 slowest tests
test: install
	$(BIN)/pytest -q --durations=25

## dev: the Dagster web UI and daemon (schedules, sensors) on http://localhost:$(DAGSTER_PORT), with a
##   local Spark Connect server (sc://127.0.0.1:$(SPARK_CONNECT_PORT)) that every run from the
##   UI, a schedule or a sensor reaches by SPARK_REMOTE instead of starting its own JVM; the
##   server stops when dev exits. With SPARK_REMOTE already set, runs use that server instead.
SPARK_CONNECT_PORT ?= 15002
DAGSTER_PORT ?= 3000
DAGSTER_DEV := dg dev -w workspace.yaml --host 127.0.0.1 --port $(DAGSTER_PORT)
dev: install
	@$(call with_spark,$(SPARK_CONNECT_PORT),$(DAGSTER_DEV))

## spark-cluster: a Spark standalone master (spark://127.0.0.1:7077, web UI :8080) and one
##   worker on loopback, from the installed pyspark, in the foreground until Ctrl-C; in another
##   shell, `export SPARK_MASTER=spark://127.0.0.1:7077` and run anything. Logs: data/spark_cluster
SPARK_CLUSTER_CORES ?= 2
SPARK_CLUSTER_MEMORY ?= 2g
spark-cluster: install
	$(BIN)/python -m propensity_assets.deploy.spark_cluster --log-dir $(CURDIR)/data/spark_cluster \
	    --cores $(SPARK_CLUSTER_CORES) --memory $(SPARK_CLUSTER_MEMORY)

## spark-connect: a Spark Connect server on sc://127.0.0.1:$(SPARK_CONNECT_PORT), from the installed
##   pyspark, in the foreground until Ctrl-C (master SPARK_MASTER, default local[*]); in another
##   shell, `export SPARK_REMOTE=sc://127.0.0.1:$(SPARK_CONNECT_PORT)` and run anything. Log: data/spark_connect
spark-connect: install
	$(SPARK_CONNECT) --port $(SPARK_CONNECT_PORT)

benchmark: install
	$(BIN)/python benchmarks/features_benchmark.py

clean:
	rm -rf data/lake data/lake.duckdb data/exports data/mlflow data/dagster_home data/spark_cluster data/spark_connect data/reports
