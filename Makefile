# The two commands a fresh machine needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
CATALOG := $(wildcard catalog/*/pyproject.toml)
PORT ?= 8000

.PHONY: install install-test run test lint typecheck pytest bench services-deps migrate clean sdk-wheel

# The plugin SDK, the platform, its dev tools and every catalog plugin.
$(STAMP): pyproject.toml sdk/pyproject.toml sdk/imbi_plugin_sdk/_version.py $(CATALOG)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "Installing the platform, the SDK and the catalog into $(VENV) (log: $(VENV)/install.log)"
	@$(PY) -m pip install -q --upgrade pip > $(VENV)/install.log 2>&1 || (cat $(VENV)/install.log; exit 1)
	@$(PY) -m pip install -q -e sdk -e '.[dev]' $(foreach p,$(CATALOG),-e $(dir $(p))) >> $(VENV)/install.log 2>&1 || (cat $(VENV)/install.log; exit 1)
	touch $(STAMP)

# Plus the example plugin the tests and benchmarks use (it has deliberately broken entry
# points, so a demo venv made only by `make run` does not carry it).
$(TEST_STAMP): $(STAMP) tests/example_plugin/pyproject.toml tests/hostile_plugin/pyproject.toml
	$(PY) -m pip install -q -e tests/example_plugin -e tests/hostile_plugin
	touch $(TEST_STAMP)

install: $(STAMP)

install-test: $(TEST_STAMP)

# Each target names its settings: `make run` the embedded developer default, tests the
# pytest settings (servers default to production; manage.py says when it defaults to dev).
DEV := DJANGO_SETTINGS_MODULE=imbi.settings.dev
TESTING := DJANGO_SETTINGS_MODULE=imbi.settings.test

migrate: install
	@$(DEV) $(PY) manage.py migrate --noinput -v 0

# The demo: SQLite, eager Celery, demo data. Ends with the URL and the logins.
run: migrate
	@$(DEV) $(PY) manage.py run_demo --noreload 127.0.0.1:$(PORT)

services-deps:
	bash scripts/install-os-deps.sh

lint: install-test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

typecheck: install-test
	$(VENV)/bin/mypy sdk/imbi_plugin_sdk imbi plugins_core bench $(filter-out %.egg-info,$(wildcard catalog/*/imbi_plugin_*))

# pytest-xdist: one worker per core (each with its own PostgreSQL and Redis), at most 4, a
# test file per worker (module fixtures such as `make run` or the two nodes start once);
# PYTEST_WORKERS=0 runs every test in this process.
PYTEST_WORKERS ?= $(shell n=$$(nproc 2>/dev/null || echo 2); [ $$n -gt 4 ] && n=4; echo $$n)

pytest: install-test services-deps
	$(TESTING) $(PY) -m pytest -q -n $(PYTEST_WORKERS) --dist loadfile

test: install-test services-deps lint typecheck pytest

# Every suite runs; the target fails at the end when any missed a target.
bench: install-test services-deps
	@status=0; for suite in bench bench.isolation bench.runtime; do \
		$(TESTING) $(PY) -m $$suite || status=1; done; exit $$status

# The SDK as a wheel (dist/), what a plugin author installs with pip.
sdk-wheel: install
	rm -rf sdk/build
	$(VENV)/bin/uv build --quiet --wheel --out-dir dist sdk

clean:
	rm -rf $(VENV) build dist sdk/build *.egg-info .pytest_cache .mypy_cache .ruff_cache .import_linter_cache
