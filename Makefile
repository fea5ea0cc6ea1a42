# chimein: `make demo` and `make test` set everything up from a fresh clone.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.chimein-installed

.PHONY: demo test lint bench clean

# torch first and pinned (constraints.txt: torch==2.13.0+cpu, the CPU build): with no torch
# installed, a resolver pulling `torch` would fetch a multi-GB CUDA build. The pinned build comes
# from a local wheel or the configured indexes when they have it, else from PyTorch's wheel index
# for that build. TORCH picks the build: `make test TORCH=cu128` installs torch 2.13.0+cu128 from
# https://download.pytorch.org/whl/cu128 (the constraints are copied with that torch line).
# The `ray` extra is installed so that CI tests the Ray backend (tests/test_ray_backend.py); the
# core needs none of it (`pip install -e .` works without Ray).
TORCH       ?= cpu
TORCH_INDEX ?= https://download.pytorch.org/whl/$(TORCH)
TORCH_PIN   := torch==$(shell sed -n 's/^torch==\([^+]*\).*/\1/p' constraints.txt)+$(TORCH)
PIP         := $(PY) -m pip install -q --disable-pip-version-check

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	sed 's/^torch==.*/$(TORCH_PIN)/' constraints.txt > $(VENV)/constraints.txt
	$(PIP) "$(TORCH_PIN)" -c $(VENV)/constraints.txt >/dev/null 2>&1 || { \
	  echo "$(TORCH_PIN): no local wheel; installing it from $(TORCH_INDEX)"; \
	  $(PIP) "$(TORCH_PIN)" -c $(VENV)/constraints.txt --extra-index-url $(TORCH_INDEX); }
	$(PIP) -e ".[dev,ray]" -c $(VENV)/constraints.txt
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
