# Advanced Deep Learning Architectures -- the two commands of the README, and their parts.
#   make book   build the site (creates .venv if missing, executes every chapter) -> _build/html
#   make test   run every test, network blocked (installs what it needs first)
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

# PyTorch's OpenMP threads spin while they wait by default; on a busy machine (CI neighbours,
# a second notebook) that made a 30-second training cell take over 15 minutes. Sleeping
# waits cost little alone and keep the chapters fast under load.
export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: book test env browser student check-student clean help

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

clean:
	rm -rf _build .pytest_cache
