# Two commands do all set-up on a fresh machine: `make run` and `make test`.
# Every target sources env.sh: the venv on PATH, telemetry off.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
UV_VERSION := 0.13.9
WITH_ENV := source ./env.sh &&
RAW_DATA := data/raw/uci.dvc data/raw/secondary.dvc

.PHONY: run test env pull repro promote serve bento requirements review bench bench-serve bench-drift bench-sweep

# The environment is rebuilt whenever pyproject.toml or uv.lock changes. uv installs no
# bytecode by default: where PYTHONDONTWRITEBYTECODE is set, every process then compiles all
# it imports, e.g. 2-2.5 s of the drift stage's ~8.5 s; --compile-bytecode does it once.
$(VENV)/.synced: pyproject.toml uv.lock
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	UV_PROJECT_ENVIRONMENT=$(VENV) $(VENV)/bin/uv sync --frozen --compile-bytecode \
		--python $(VENV)/bin/python
	touch $@

env: $(VENV)/.synced

# Only the raw data lives in the remote; every other output is rebuilt by `dvc repro`.
pull: env
	$(WITH_ENV) dvc pull $(RAW_DATA)

repro: pull
	$(WITH_ENV) dvc repro
	$(WITH_ENV) python -m mushroom.stages.evaluate --skip-if-logged
	@echo
	@echo "metrics:  reports/metrics.json (test split, cv), reports/safety.json, reports/held_out.json, reports/data_summary.json"
	@echo "gate:     reports/gate.json"
	@echo "plots:    reports/plots/images/*.png (offline), or 'dvc plots show' (HTML, loads vega from a CDN)"
	@echo "MLflow:   source env.sh && mlflow ui --backend-store-uri sqlite:///mlflow.db --host 127.0.0.1"

# Registers the model in MLflow and the BentoML store, only if evaluate's gate passed.
promote: repro
	$(WITH_ENV) mushroom promote

# The champion on 127.0.0.1:3000, in the foreground (Ctrl+C stops it).
serve: env
	@echo "API docs: http://127.0.0.1:3000/  (OpenAPI: /docs.json, model: /model)"
	$(WITH_ENV) bentoml serve mushroom.service:MushroomClassifier --host 127.0.0.1 --port 3000

run: promote
	$(MAKE) --no-print-directory serve

# The bento for containers: `bentoml containerize mushroom-classifier:latest` where Docker runs.
bento: env
	$(WITH_ENV) bentoml build -f bentofile.yaml src

# Re-export the serving requirements after changing uv.lock.
requirements: env
	$(WITH_ENV) uv export --frozen --only-group serve --no-hashes --no-emit-project \
		--no-annotate --no-header -o src/requirements-serve.txt

test: env
	$(WITH_ENV) python -m pytest

# For code review: what a branch changes against main.
review: env
	$(WITH_ENV) dvc params diff main --md
	$(WITH_ENV) dvc metrics diff main --md
	$(WITH_ENV) dvc plots diff main --out reports/plots_diff
	@echo "plots diff: reports/plots_diff/index.html"

bench: pull
	$(WITH_ENV) python bench/pipeline.py --repeats 3

bench-serve: pull
	$(WITH_ENV) python bench/serve.py --seconds 10 --repeats 20

bench-drift: pull
	$(WITH_ENV) python bench/drift.py --repeats 5

# The README's results table: every dataset x split x model through the real stages (~40 min).
bench-sweep: pull
	$(WITH_ENV) python bench/sweep.py
