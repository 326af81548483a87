# The two commands a new machine needs: `make run` (set up and run on the embedded defaults:
# SQLite, bundled Whisper base) and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup run test test-fast lint bench clean

setup: $(STAMP)

# torch is pinned by constraints.txt to the CPU wheel these machines carry; a GPU server's
# Docker image brings its own.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e ".[dev,hf]"
	touch $(STAMP)

run: setup
	$(VENV)/bin/callcoach serve

test: setup
	$(PY) -m pytest -q -ra

test-fast: setup
	$(PY) -m pytest -q -ra -m "not slow and not browser"

lint: setup
	$(VENV)/bin/ruff check callcoach tests bench
	$(VENV)/bin/mypy

bench: setup
	$(PY) bench/accuracy.py
	$(PY) bench/speed.py
	$(PY) bench/e2e.py
	$(PY) bench/ack_latency.py
	$(PY) bench/rest_throughput.py
	$(PY) bench/org_chart.py
	$(PY) bench/custom_category.py
	$(PY) bench/encoder_speed.py
	$(PY) bench/chaos.py
	$(PY) bench/scale.py
	$(PY) bench/long_call.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
