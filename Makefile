# Two commands do all set-up on a fresh machine: `make run` and `make test`.
# Every target sources env.sh: the venv on PATH, telemetry off.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
UV_VERSION := 0.13.9
WITH_ENV := source ./env.sh &&
RAW_DATA := data/raw/uci.dvc data/raw/secondary.dvc
DRIFT_WINDOW := $(wildcard data/monitoring/window.parquet.dvc)
FEEDBACK := $(wildcard data/feedback/labelled.parquet.dvc)

.PHONY: run test test-fast env pull repro promote serve bento requirements review bench bench-serve bench-drift bench-sweep bench-log bench-fleet promtool chromium postgres wrk

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

# Only the raw data and the drift window (`mushroom monitor snapshot`, once one is committed)
# live in the remote; every other output is rebuilt by `dvc repro`.
pull: env
	$(WITH_ENV) dvc pull $(RAW_DATA) $(DRIFT_WINDOW) $(FEEDBACK)

repro: pull
	$(WITH_ENV) dvc repro
	$(WITH_ENV) python -m mushroom.stages.evaluate --skip-if-logged
	@echo
	@echo "compared: reports/summary.json (dvc metrics diff, dvc exp show)"
	@echo "reports:  reports/metrics.json (test split, cv), reports/safety.json, reports/held_out.json, reports/data_summary.json"
	@echo "gate:     reports/gate.json"
	@echo "plots:    reports/plots/images/*.png (offline), or 'dvc plots show' (HTML, loads vega from a CDN)"
	@echo "MLflow:   source env.sh && mlflow ui --backend-store-uri sqlite:///mlflow.db --host 127.0.0.1"

# Registers the model in MLflow and the BentoML store, only if evaluate's gate passed.
promote: repro
	$(WITH_ENV) mushroom promote

# The MLflow champion on 127.0.0.1:3000, in the foreground (Ctrl+C stops it). It serves
# what the alias named at start: after `mushroom promote` or `mushroom rollback`, restart it.
serve: env
	@echo "Open http://127.0.0.1:3000/ to ask about a mushroom  (API: /docs, /docs.json, /model)"
	$(WITH_ENV) bentoml serve mushroom.serving.service:MushroomClassifier --host 127.0.0.1 --port 3000

run: promote
	$(MAKE) --no-print-directory serve

# The bento for containers, holding the current champion: `source env.sh && bentoml
# containerize mushroom-classifier:latest` where Docker runs (the store is .bentoml/).
bento: env
	$(WITH_ENV) bentoml build -f bentofile.yaml src

# Re-export the serving requirements after changing uv.lock.
requirements: env
	$(WITH_ENV) uv export --frozen --only-group serve --no-hashes --no-emit-project \
		--no-annotate --no-header -o src/requirements-serve.txt

test: env promtool chromium postgres
	$(WITH_ENV) python -m pytest

# The unit and validation tier (under a minute): no real data, pipeline run, server or
# evaluate stage; the tests that need one are marked slow by tests/conftest.py.
test-fast: env promtool
	$(WITH_ENV) python -m pytest -m "not slow"

# promtool (Debian's `prometheus` package) checks and unit-tests src/prometheus/alerts.yml in
# the tests. When it is missing, only its binary (it needs nothing but libc) is unpacked into
# the venv: installing the package would also start a Prometheus server where systemd runs.
promtool: env
	@$(WITH_ENV) command -v promtool >/dev/null || { \
		download=$$(mktemp -d) && chmod 777 $$download && \
		{ [ "$$(id -u)" != 0 ] || apt-get update -qq; } && \
		(cd $$download && apt-get download -qq prometheus) && \
		dpkg-deb -x $$download/prometheus_*.deb $$download/unpacked && \
		install -m 755 $$download/unpacked/usr/bin/promtool $(VENV)/bin/promtool && \
		echo "promtool: unpacked from Debian's prometheus package into $(VENV)/bin"; \
		unpacked=$$?; rm -rf $$download; \
		[ $$unpacked = 0 ] || { echo "error: promtool is missing and could not be fetched" \
			"with apt-get (as root it runs apt-get update first): install the package" \
			"'prometheus' (Debian, Ubuntu) or put promtool from" \
			"https://prometheus.io/download/ on PATH" >&2; exit 1; }; }

# Debian's Chromium, which the page's browser tests drive (tests/test_page.py; Playwright
# cannot download its own browsers here): installed with apt-get when missing.
chromium:
	@command -v chromium >/dev/null || { \
		{ [ "$$(id -u)" = 0 ] && apt-get update -qq && \
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null && \
			echo "chromium: installed Debian's chromium package"; } || \
		{ echo "error: chromium is missing and could not be installed with apt-get (as root):" \
			"install the package 'chromium' (Debian) so that 'chromium' is on PATH" >&2; \
			exit 1; }; }

# Debian's PostgreSQL server, which the fleet tests start a throwaway cluster of
# (tests/pgcluster.py; initdb and pg_ctl live in /usr/lib/postgresql/<version>/bin): installed
# with apt-get when missing. The tests run their own cluster, never the package's.
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
		{ [ "$$(id -u)" = 0 ] && apt-get update -qq && \
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15 >/dev/null && \
			echo "postgres: installed Debian's postgresql-15 package"; } || \
		{ echo "error: the PostgreSQL server is missing and could not be installed with" \
			"apt-get (as root): install the package 'postgresql-15' (Debian)" >&2; \
			exit 1; }; }

# wrk, the load generator of the fleet bench (bench/fleet.py): C, so the client takes little
# of the two cores the replicas share. Installed with apt-get when missing.
wrk:
	@command -v wrk >/dev/null || { \
		{ [ "$$(id -u)" = 0 ] && apt-get update -qq && \
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null && \
			echo "wrk: installed Debian's wrk package"; } || \
		{ echo "error: wrk is missing and could not be installed with apt-get (as root):" \
			"install the package 'wrk' (Debian)" >&2; exit 1; }; }

# For code review: what a branch changes against main.
review: env
	$(WITH_ENV) dvc params diff main --md
	$(WITH_ENV) dvc metrics diff main --md
	$(WITH_ENV) dvc metrics diff main --md --targets reports/metrics.json reports/held_out.json
	$(WITH_ENV) dvc plots diff main --out reports/plots_diff
	@echo "plots diff: reports/plots_diff/index.html"

bench: pull
	$(WITH_ENV) python bench/pipeline.py --repeats 3

# The service against the baseline, then the fleet (SQLite vs PostgreSQL log, 1 vs 2 replicas).
bench-serve: pull postgres wrk
	$(WITH_ENV) python bench/serve.py --seconds 10 --repeats 20

bench-fleet: pull postgres wrk
	$(WITH_ENV) python bench/serve.py --only fleet --seconds 10 --repeats 5

bench-drift: pull
	$(WITH_ENV) python bench/drift.py --repeats 5

# The prediction log at 10^5, 10^6 and 5 x 10^6 answers on SQLite and PostgreSQL (~25 min).
bench-log: pull postgres
	$(WITH_ENV) python bench/log_growth.py

# docs/results.md's table: every dataset x split x model through the real stages (~40 min).
bench-sweep: pull
	$(WITH_ENV) python bench/sweep.py
