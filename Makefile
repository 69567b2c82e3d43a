# Two commands on a fresh machine (Python 3.11, Node 20): `make demo` and `make test`.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
ENGINE := tests/enumerator/node_modules/.package-lock.json

.PHONY: demo test forms lint clean

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

$(ENGINE): tests/enumerator/package.json tests/enumerator/package-lock.json
	npm ci --prefix tests/enumerator --no-audit --no-fund --loglevel=error

## The main job on the embedded defaults: build and lint the five forms.
demo: forms

forms: $(INSTALLED)
	$(VENV)/bin/consult forms build

lint: $(INSTALLED)
	$(VENV)/bin/consult forms lint

## The whole test suite (installs Python deps and ODK's XForms engine first).
test: $(INSTALLED) $(ENGINE)
	$(PY) -m pytest $(PYTEST_ARGS)

clean:
	rm -rf build $(VENV) tests/enumerator/node_modules
