# facial-outcomes: two commands to know, `make report` and `make test`.
# Python 3.11 as the project requires; plain python3 where no versioned binary exists.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STUDY ?= demo
export DAGSTER_HOME := $(CURDIR)/.dagster

.PHONY: report test ui demo validate clean bench bench-loop

# The stamp files re-run the install when pyproject.toml changes.
$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed

report: $(VENV)/.installed
	$(BIN)/outcomes report

# ruff first: a change it would reformat, or a lint finding, fails the tests in seconds.
# The tests run on every core (each worker builds the session fixtures it needs, in its own
# temporary folder); `pytest tests/test_x.py` alone runs in one process.
test: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -n auto

ui: $(VENV)/.installed
	$(BIN)/dagster dev --host 127.0.0.1 --port 3000

# Regenerate the synthetic demo cohort (byte-identical for the same seed).
demo: $(VENV)/.installed
	$(BIN)/outcomes demo --seed 63 --out data/raw/demo

validate: $(VENV)/.installed
	$(BIN)/dagster definitions validate

# Synthetic registries of 63 to 100,000 patients through the whole pipeline, with a plain
# pandas + scipy comparison: reports/bench/bench.csv and bench.md (data in data/processed/bench/).
BENCH_SIZES ?= 63,1000,10000,100000
BENCH_RUNS ?= 1
bench: $(VENV)/.installed
	$(BIN)/python bench/run.py --sizes $(BENCH_SIZES) --runs $(BENCH_RUNS)

# The statistician's loop: the demo rerun after changing one analysis option (outcomes run
# --set ...), median of three rounds: reports/bench/loop_run.md (LOOP_RUNNER=report: through
# Dagster, outcomes report --study demo --set ...).
LOOP_RUNNER ?= run
bench-loop: $(VENV)/.installed
	$(BIN)/python bench/loop.py --rounds 3 --runner $(LOOP_RUNNER)

# Four copies of the demo as four studies, `outcomes report` in parallel (a warehouse per study,
# the multiprocess executor) and one after another (one file, one process), each cold; median of
# PARALLEL_ROUNDS rounds, wall and CPU seconds: reports/bench/parallel.md (docs/scaling.md).
# PARALLEL_MODES="demo report" times the demo alone and `make report`'s run (every bundled study), cold.
PARALLEL_ROUNDS ?= 3
PARALLEL_MODES ?= parallel sequential
.PHONY: bench-parallel
bench-parallel: $(VENV)/.installed
	$(BIN)/python bench/parallel.py --rounds $(PARALLEL_ROUNDS) --modes $(PARALLEL_MODES)

# The study's warehouse file (its write-ahead log, lock and spill folder too) and reports; the
# single warehouse.duckdb of the layout before one file per study, if one is left.
clean:
	rm -rf data/processed/$(STUDY).duckdb* data/processed/warehouse.duckdb* data/processed/$(STUDY).kept data/processed/warehouse.kept reports/$(STUDY)
