# chimein: `make demo` and `make test` set everything up from a fresh clone.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.chimein-installed

.PHONY: demo test lint bench clean

# torch first and pinned: with no torch installed, a resolver pulling `torch` would fetch a
# multi-GB CUDA build; torch==2.13.0 is the CPU build (see constraints.txt).
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check "torch==2.13.0" -c constraints.txt
	$(PY) -m pip install -q --disable-pip-version-check -e ".[dev]" -c constraints.txt
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/chimein demo

test: $(STAMP)
	$(VENV)/bin/python -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check chimein tests benchmarks

bench: $(STAMP)
	$(PY) benchmarks/bench_render.py
	$(PY) benchmarks/bench_env.py
	$(PY) benchmarks/bench_eval.py

clean:
	rm -rf $(VENV) demo_out .pytest_cache
