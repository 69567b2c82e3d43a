# Two commands on a fresh machine (Python 3.11, Node 20): `make demo` and `make test`.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
ENGINE := tests/enumerator/node_modules/.package-lock.json

.PHONY: demo test forms lint clean browser

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

$(ENGINE): tests/enumerator/package.json tests/enumerator/package-lock.json
	npm ci --prefix tests/enumerator --no-audit --no-fund --loglevel=error

## The main job on the embedded defaults: a whole consultation round on a local sandbox Central.
demo: $(INSTALLED)
	$(VENV)/bin/consult demo

forms: $(INSTALLED)
	$(VENV)/bin/consult forms build

lint: $(INSTALLED)
	$(VENV)/bin/consult forms lint

## Debian's Chromium and Noto fonts, for the test that renders the report as a reader sees it.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -qq chromium fonts-noto-core >/dev/null; \
	  else echo "install Debian's chromium and fonts-noto-core for the report test" >&2; exit 1; fi; }

## The whole test suite (installs Python deps, ODK's XForms engine and Chromium first).
test: $(INSTALLED) $(ENGINE) browser
	$(PY) -m pytest $(PYTEST_ARGS)

clean:
	rm -rf build $(VENV) tests/enumerator/node_modules
