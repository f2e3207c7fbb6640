# Advanced Deep Learning Architectures -- the two commands of the README, and their parts.
#   make book   build the site (creates .venv if missing, executes every chapter) -> _build/html
#   make test   run every test, network blocked (installs what it needs first)
#   make rehearse   the full profile on the CPU, loops capped: _build/rehearsal.{json,md}
#   make gpu-check  every chapter in the full profile on a GPU: _build/gpu-check.{json,md}
#   make newest     Python 3.12, the newest dependencies, no constraints: unit tests + 3 chapters
#   make floor      the declared lower bounds of the fragile libraries: their tests
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

# PyTorch's OpenMP threads spin while they wait by default; on a busy machine (CI neighbours,
# a second notebook) that made a 30-second training cell take over 15 minutes. Sleeping
# waits cost little alone and keep the chapters fast under load.
export OMP_WAIT_POLICY ?= PASSIVE

# Python 3.12: on PATH, else a pyenv installation (pyenv's shim alone may refuse to run it).
PYTHON_NEWEST ?= $(firstword $(shell python3.12 -c 'import sys; print(sys.executable)' 2>/dev/null) \
                 $(wildcard $(HOME)/.pyenv/versions/3.12*/bin/python3.12) python3.12)
FLOOR_PINS := open-clip-torch==3.0.0 diffusers==0.29.0

.PHONY: book test env browser student check-student clean help rehearse gpu-check newest floor

help:
	@sed -n '1,4p' Makefile

env: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: '$(PYTHON)' not found. Install Python 3.11, or run: make $(MAKECMDGOALS) PYTHON=/path/to/python3.11"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --constraint constraints.txt --editable ".[book,test]"
	@touch $(STAMP)

# Headless Chromium and ChromeDriver (Debian packages) for the site test.
browser:
	@if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver; \
	else echo "error: the site test needs chromium and chromedriver: sudo apt-get install chromium chromium-driver"; exit 1; fi

# A fresh execution every time: the cache is emptied first.
book: env
	@$(PY) -c "from course_utils.authoring import warn_if_placeholder; warn_if_placeholder()"
	rm -rf _build/.jupyter_cache
	COURSE_PROGRESS=0 $(VENV)/bin/jupyter-book build . --all -W --keep-going
	@echo "The site: _build/html/index.html"

# Notebooks run under nbval first; the site build in tests/test_site.py reuses those runs.
test: env browser
	tests/run_offline.sh $(PY) -m pytest

student: env
	$(PY) -m course_utils.authoring student

check-student: env
	$(PY) -m course_utils.authoring student --check

# Every notebook in the full profile on this CPU with each loop capped at 2 steps; FLOPs of each
# loop's first step -> an estimated T4 time; peak memory. Needs no GPU.
rehearse: env
	tests/run_offline.sh $(PY) -m course_utils.rehearsal rehearse

# On a machine with a large GPU: every notebook under nbval in the full profile, six at once.
gpu-check: env
	$(PY) -m course_utils.rehearsal gpu-check

# The nearest thing to Colab: Python 3.12 and the newest release of every dependency the index
# offers (no constraints.txt). Unit tests (the exact-pin test skipped) and chapters 3, 6 and 7b.
newest:
	@test -x .venv-newest/bin/python || $(PYTHON_NEWEST) -m venv .venv-newest
	.venv-newest/bin/python -m pip install -q --upgrade --upgrade-strategy eager --editable ".[book,test]"
	tests/run_offline.sh .venv-newest/bin/python -m pytest -m "not pinned_env" --ignore=tests/test_site.py \
	  tests book/03_object_detection.ipynb book/06_embeddings_clip.ipynb book/07b_latent_diffusion.ipynb

# The declared floors of open_clip and diffusers (huggingface_hub as pip resolves it) and their tests.
floor:
	@test -x .venv-floor/bin/python || $(PYTHON) -m venv .venv-floor
	grep -v -i -E '^(open[-_]clip[-_]torch|diffusers|huggingface[-_]hub)==' constraints.txt > .venv-floor/constraints.txt
	.venv-floor/bin/python -m pip install -q --constraint .venv-floor/constraints.txt --editable ".[book,test]" $(FLOOR_PINS)
	tests/run_offline.sh .venv-floor/bin/python -m pytest -m "not pinned_env" tests/test_models_clip.py \
	  tests/test_models_diffusion.py tests/test_models_latent.py tests/test_models_unclip.py \
	  tests/test_exercises_diffusion.py tests/test_exercises_embeddings.py \
	  tests/test_fake_cuda.py tests/test_fake_cuda_diffusion.py tests/test_fake_cuda_embeddings.py

clean:
	rm -rf _build .pytest_cache
