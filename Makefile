# Two commands on a fresh machine (Python 3.11, Node 20): `make demo` and `make test`.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
ENGINE := tests/enumerator/node_modules/.package-lock.json

.PHONY: demo test forms lint clean browser pango

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

$(ENGINE): tests/enumerator/package.json tests/enumerator/package-lock.json
	npm ci --prefix tests/enumerator --no-audit --no-fund --loglevel=error

## The main job on the embedded defaults: a whole consultation round on a local sandbox Central.
demo: $(INSTALLED) pango
	$(VENV)/bin/consult demo

forms: $(INSTALLED)
	$(VENV)/bin/consult forms build

lint: $(INSTALLED)
	$(VENV)/bin/consult forms lint

APT_INSTALL = apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq
PANGO = libpango-1.0-0 libpangoft2-1.0-0 fonts-noto-core

## Pango and the Noto fonts, which WeasyPrint needs to write the PDF report.
pango:
	@ldconfig -p | grep -q libpangoft2-1.0 || { \
	  if [ "$$(id -u)" = 0 ]; then $(APT_INSTALL) $(PANGO) >/dev/null; \
	  else echo "install Debian's $(PANGO) for the PDF report" >&2; exit 1; fi; }

## Debian's Chromium and Poppler (with Pango and Noto), for the tests that look at the report as a reader does.
browser: pango
	@{ command -v chromium && command -v pdftoppm; } >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then $(APT_INSTALL) chromium poppler-utils >/dev/null; \
	  else echo "install Debian's chromium and poppler-utils for the report tests" >&2; exit 1; fi; }

## The whole test suite (installs Python deps, ODK's XForms engine and Chromium first), a test file per worker.
PYTEST_WORKERS ?= 2
test: $(INSTALLED) $(ENGINE) browser
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

clean:
	rm -rf build $(VENV) tests/enumerator/node_modules
