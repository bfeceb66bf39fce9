# Two commands: `make run` serves the app on the sample data, `make test` runs every test.
# Both create .venv if missing and (re)install only when pyproject.toml or constraints.txt changed.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PORT ?= 8501

.PHONY: install run test test-fast sample bench screenshots clean-venv

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip wheel setuptools
	$(PY) -m pip install --quiet -c constraints.txt -e '.[test,spark]'
	@touch $(STAMP)

install: $(STAMP)

run: install
	$(VENV)/bin/streamlit run app.py --server.port $(PORT) --server.headless true --browser.gatherUsageStats false

test: install
	$(PY) -m pytest

test-fast: install
	$(PY) -m pytest -m "not slow and not e2e"

# Benchmarks: rewrites docs/benchmarks.md and docs/scale.md (about 30 minutes on 2 cores).
# BENCH_ARGS="--data movielens:PATH" adds both MovieLens protocols (the budget becomes an hour); BENCH_ARGS=--quick is a fast check.
bench: install
	$(PY) bench/run_all.py $(BENCH_ARGS)

# The README's page screenshots: the browser test takes them, this copies them into docs/images/.
screenshots: install
	$(PY) -m pytest tests/e2e -q
	mkdir -p docs/images/screenshots && cp test-artifacts/screenshots/*.png docs/images/screenshots/

sample: install
	$(VENV)/bin/recsys generate --out sample_data

clean-venv:
	rm -rf $(VENV)
