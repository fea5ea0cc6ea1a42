# chimein: `make demo` and `make test` set everything up from a fresh clone.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.chimein-installed

.PHONY: demo test lint bench clean

# torch first and pinned: with no torch installed, a resolver pulling `torch` would fetch a
# multi-GB CUDA build; torch==2.13.0 is the CPU build (see constraints.txt).
# The `ray` extra is installed so that CI tests the Ray backend (tests/test_ray_backend.py); the
# core needs none of it (`pip install -e .` works without Ray).
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check "torch==2.13.0" -c constraints.txt
	$(PY) -m pip install -q --disable-pip-version-check -e ".[dev,ray]" -c constraints.txt
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/chimein demo

# CHIMEIN_REQUIRE_RAY: the Ray backend's tests fail (instead of skipping) if Ray is missing
test: $(STAMP)
	CHIMEIN_REQUIRE_RAY=1 $(VENV)/bin/python -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check chimein tests benchmarks

bench: $(STAMP)
	$(PY) benchmarks/bench_render.py
	$(PY) benchmarks/bench_env.py
	$(PY) benchmarks/bench_eval.py
	$(PY) benchmarks/bench_parallel.py

clean:
	rm -rf $(VENV) demo_out .pytest_cache
