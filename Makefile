# Two entry points do all set-up on a fresh machine: `make run` and `make test`.
# Telemetry is switched off in env.sh, which every target sources.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
UV_VERSION := 0.13.9
RUN := source ./env.sh &&

.PHONY: run test env pull repro review clean-venv

$(VENV)/.synced: pyproject.toml uv.lock
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(RUN) UV_PROJECT_ENVIRONMENT=$(VENV) $(VENV)/bin/uv sync --frozen --python $(VENV)/bin/python
	touch $@

env: $(VENV)/.synced

pull: env
	$(RUN) dvc pull

repro: pull
	$(RUN) dvc repro
	@echo "metrics: reports/metrics.json, reports/data_summary.json; plots: reports/plots/ (PNG) and 'dvc plots show'"
	@echo "experiments: mlflow ui --backend-store-uri sqlite:///mlflow.db --host 127.0.0.1"

run: repro

test: env
	$(RUN) python -m pytest

review: env
	$(RUN) dvc params diff main --md && dvc metrics diff main --md && dvc plots diff main -o reports/plots_diff
