# The two commands a fresh machine needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
CATALOG := $(wildcard catalog/*/pyproject.toml)
EXAMPLE := $(wildcard tests/example_plugin/pyproject.toml)

.PHONY: install run test lint typecheck pytest bench services-deps migrate clean

$(STAMP): pyproject.toml $(CATALOG) $(EXAMPLE)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]' $(foreach p,$(CATALOG) $(EXAMPLE),-e $(dir $(p)))
	touch $(STAMP)

install: $(STAMP)

migrate: install
	$(PY) manage.py migrate --noinput

run: migrate
	$(PY) manage.py seed_demo
	$(PY) manage.py runserver 127.0.0.1:8000

services-deps:
	bash scripts/install-os-deps.sh

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: install
	$(VENV)/bin/mypy imbi plugins_core bench $(filter-out %.egg-info,$(wildcard catalog/*/imbi_plugin_*))

pytest: install services-deps
	$(PY) -m pytest -q

test: install services-deps lint typecheck pytest

bench: install services-deps
	$(PY) -m bench

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
