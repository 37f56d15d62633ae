# shequ — two commands: `make demo` runs the platform, `make test` runs the whole suite.
# Both work from a clean clone: they create .venv, install Python and npm packages, the
# Debian packages the platform needs (when missing), and build the front-end assets.

PYTHON ?= $(shell command -v python3.11 || command -v python3.12 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
SHEQU := $(VENV)/bin/shequ
PG_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/postgres

.PHONY: demo test test-fast test-sqlite test-pg system assets venv lint bench clean

demo: venv assets
	$(SHEQU) demo

test: system venv assets lint
	$(PY) -m pytest --db sqlite -n auto --dist loadfile --no-loadscope-reorder
	SHEQU_TEST_PG_URL=$(PG_URL) $(PY) -m pytest --db postgresql -n auto --dist loadfile --no-loadscope-reorder

test-fast: venv assets
	$(PY) -m pytest --db sqlite -n auto -m "not e2e and not slow" -q

test-sqlite: venv assets
	$(PY) -m pytest --db sqlite -n auto --dist loadfile --no-loadscope-reorder

test-pg: venv assets
	SHEQU_TEST_PG_URL=$(PG_URL) $(PY) -m pytest --db postgresql -n auto --dist loadfile --no-loadscope-reorder

system: .stamp-system
.stamp-system: scripts/system-deps.sh
	bash scripts/system-deps.sh
	touch $@

venv: .stamp-venv
.stamp-venv: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

assets: .stamp-assets
.stamp-assets: package.json package-lock.json scripts/build-assets.sh
	bash scripts/build-assets.sh
	touch $@

lint: venv
	$(VENV)/bin/ruff check src tests
	$(VENV)/bin/mypy src

bench: venv
	$(SHEQU) bench seed --scale full

clean:
	rm -rf $(VENV) node_modules src/shequ/web/static/vendor .stamp-* var
