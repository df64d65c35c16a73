# Every target installs what it needs into .venv first, so a fresh machine with python3 is enough.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STATE ?= ./state

.PHONY: run test bench clean vendor

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

run: $(VENV)/.installed
	$(VENV)/bin/gatewayd serve --state-dir $(STATE)

test: $(VENV)/.installed
	@# The dashboard's browser tests drive Debian's Chromium (never a downloaded one); without it they skip.
	@if [ ! -x /usr/bin/chromium ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -q && apt-get install -y -q chromium; fi
	@# The MQTT tests run against Debian's Mosquitto (started by a fixture on a free loopback port).
	@if [ ! -x /usr/sbin/mosquitto ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -q && apt-get install -y -q mosquitto; fi
	$(PY) -m pytest -q $(PYTEST_ARGS)

bench: $(VENV)/.installed
	$(PY) -m bench

# Refetches the dashboard's vendored browser libraries (pinned versions, npm needed only here).
vendor:
	sh packaging/vendor.sh

clean:
	rm -rf $(VENV) $(STATE) .pytest_cache
