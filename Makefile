# Every target installs what it needs into .venv first, so a fresh machine with python3 is enough.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STATE ?= ./state

.PHONY: run test bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

run: $(VENV)/.installed
	$(VENV)/bin/gatewayd serve --state-dir $(STATE)

test: $(VENV)/.installed
	$(PY) -m pytest -q $(PYTEST_ARGS)

bench: $(VENV)/.installed
	$(PY) -m bench

clean:
	rm -rf $(VENV) $(STATE) .pytest_cache
