# RecVector: PGXS for the extension files, plus the Python library PL/Python loads and the model.
#   make install   extension + Python library + local model (run as root; `make deps` first on a new machine)
#   make demo      everything a new machine needs, then the Pagila demo (offline, local model)
#   make test      everything the tests need, then the test suite (make test-fast: the tier without a database)
#   make bench     benchmarks -> docs/benchmarks*.md (quick); make bench-full adds 1M entities

EXTVERSION := $(shell sed -nE "s/^default_version *= *'([^']+)'.*/\1/p" extension/recvector.control)
PG_MAJOR ?= 15
PG_CONFIG ?= $(firstword $(wildcard /usr/lib/postgresql/$(PG_MAJOR)/bin/pg_config) pg_config)
SYSTEM_PYTHON ?= /usr/bin/python3
# The client, CLI and tests run in a virtualenv made from the first python3 on PATH.
# (Not called PYTHON: PGXS sets that variable.)
HOST_PYTHON ?= python3
VENV ?= .venv
VPY := $(VENV)/bin/python
PYLIB_ROOT ?= /usr/local/lib/recvector
PYLIB := $(PYLIB_ROOT)/$(EXTVERSION)
SHARE ?= /usr/local/share/recvector
MODEL := all-MiniLM-L6-v2
RELEASED := $(patsubst releases/recvector-python-%.tar.gz,%,$(wildcard releases/recvector-python-*.tar.gz))
PGHOST ?= 127.0.0.1
PGUSER ?= postgres
export PGHOST PGUSER

# Released scripts are committed (frozen, sql/frozen.txt); the current version's install and
# upgrade scripts are build outputs made from sql/ by scripts/build_sql.py (as pgvector's DATA_built).
MODULEDIR = extension
RELEASES := $(shell sed '$$d' sql/versions.txt)
LAST_RELEASE := $(lastword $(RELEASES))
DATA = extension/recvector.control $(wildcard extension/recvector--*.sql)
DATA_built = build/recvector--$(EXTVERSION).sql $(if $(LAST_RELEASE),build/recvector--$(LAST_RELEASE)--$(EXTVERSION).sql)
PLAIN_SQL = python/recvector/sql/recvector--$(EXTVERSION).plain.sql
SQL_SOURCES := $(wildcard sql/*.txt sql/incremental/*.sql sql/idempotent/*.sql) scripts/build_sql.py
EXTRA_CLEAN = build $(PLAIN_SQL)

PGXS := $(shell $(PG_CONFIG) --pgxs 2>/dev/null)
ifneq ($(PGXS),)
include $(PGXS)
else
install:
	@echo "pg_config not found: run 'make deps' first (as root)"; exit 1
endif

.PHONY: test-fast test-typescript release bench-full test-deps studio release-archive deps sql check-sql install-python install-current-python install-released-python install-model client server demo test bench

deps:
	bash scripts/install-deps.sh

$(DATA_built) $(PLAIN_SQL) &: $(SQL_SOURCES) extension/recvector.control python/pyproject.toml python/recvector/__init__.py
	$(HOST_PYTHON) scripts/build_sql.py

sql: $(DATA_built) $(PLAIN_SQL)

# Frozen released files unchanged, versions in step (control file, pyproject, package, versions.txt).
check-sql:
	$(HOST_PYTHON) scripts/build_sql.py --check

install: install-python install-model

# The library PL/Python imports: pinned dependencies (reinstalled only when the lock changes) and
# this tree's recvector package, in a directory named after the extension version.
install-python: install-current-python install-released-python

install-current-python: $(PLAIN_SQL)
	@mkdir -p $(PYLIB)
	@if ! cmp -s python/requirements-plpython.txt $(PYLIB)/.requirements.txt; then \
	  echo "==> pip install --target $(PYLIB)"; \
	  $(SYSTEM_PYTHON) -m pip install --quiet --disable-pip-version-check --no-warn-script-location \
	    --upgrade --target $(PYLIB) -r python/requirements-plpython.txt && \
	  cp python/requirements-plpython.txt $(PYLIB)/.requirements.txt; \
	fi
	@rm -rf $(PYLIB)/recvector && cp -r python/recvector $(PYLIB)/recvector && \
	  find $(PYLIB)/recvector -name __pycache__ -prune -exec rm -rf {} + && chmod -R a+rX $(PYLIB_ROOT)

# Earlier releases' Python libraries (releases/recvector-python-<v>.tar.gz, the python/ tree of each
# release), each in its own directory, so an installed older extension version keeps working until
# `ALTER EXTENSION recvector UPDATE`, as pgai does. The same pinned dependencies are hard-linked
# from this version's directory instead of downloaded again.
install-released-python: install-current-python
	@for v in $(RELEASED); do \
	  [ "$$v" = "$(EXTVERSION)" ] && continue; \
	  dir=$(PYLIB_ROOT)/$$v; tmp=$$(mktemp -d); \
	  tar -xzf releases/recvector-python-$$v.tar.gz -C $$tmp && src=$$tmp/recvector-$$v/python || exit 1; \
	  if ! cmp -s $$src/requirements-plpython.txt $$dir/.requirements.txt; then \
	    echo "==> Python library of RecVector $$v -> $$dir"; rm -rf $$dir; \
	    if cmp -s $$src/requirements-plpython.txt $(PYLIB)/.requirements.txt; then cp -al $(PYLIB) $$dir; \
	    else mkdir -p $$dir && $(SYSTEM_PYTHON) -m pip install --quiet --disable-pip-version-check \
	      --no-warn-script-location --target $$dir -r $$src/requirements-plpython.txt || exit 1; fi; \
	    cp $$src/requirements-plpython.txt $$dir/.requirements.txt; \
	  fi; \
	  rm -rf $$dir/recvector && cp -r $$src/recvector $$dir/recvector && rm -rf $$tmp; \
	done; chmod -R a+rX $(PYLIB_ROOT)

# The studio's page (React + React Flow, built with Vite); the build is committed in
# python/recvector/studio/static, so only changing the page needs npm.
studio:
	cd studio && npm install --no-audit --no-fund && npm run build
	python3 scripts/studio_source_hash.py --write

# Cutting a release (DEVELOPMENT.md): freeze the scripts and keep the Python library for `make
# install` of later versions; then add the next version to sql/versions.txt.
release: sql
	$(HOST_PYTHON) scripts/build_sql.py --release
	$(MAKE) release-archive

release-archive:
	git archive --prefix=recvector-$(EXTVERSION)/ HEAD python/recvector python/requirements-plpython.txt \
	  | gzip -9n > releases/recvector-python-$(EXTVERSION).tar.gz

install-model:
	@mkdir -p $(SHARE)/models
	@rm -rf $(SHARE)/models/$(MODEL) && cp -r models/$(MODEL) $(SHARE)/models/$(MODEL) && chmod -R a+rX $(SHARE)

# The client, CLI and test tools, in $(VENV).
client: $(PLAIN_SQL)
	@test -x $(VPY) || $(HOST_PYTHON) -m venv $(VENV)
	@$(VPY) -m pip install --quiet --disable-pip-version-check -e 'python[test]'

server:
	@bash scripts/ensure-server.sh

demo: deps install client server
	$(VPY) -m recvector.cli demo

# The studio's browser tests drive Debian's Chromium (never a downloaded browser).
test-deps:
	@command -v chromium >/dev/null 2>&1 || { echo "==> apt-get install chromium"; apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; }

# The fast tier (no database: mapping compiler, text, filters, providers' requests, layout), then
# the database suite, then the TypeScript client's tests against the real extension.
test-fast: client
	$(VPY) -m pytest -q tests/unit

test: deps test-deps install client server
	$(VPY) -m pytest -q tests/unit
	$(VPY) -m pytest -q tests --ignore=tests/unit
	$(MAKE) test-typescript

test-typescript:
	cd clients/typescript && npm ci --no-audit --no-fund --loglevel=error && npm test

# Quick mode (under 5 minutes): Pagila, then 100k synthetic entities. bench-full: 1M entities
# (about 20 minutes on 2 cores). Both write docs/benchmarks*.md and .json.
CHINOOK := $(wildcard ../shared/datasets/chinook/Chinook_PostgreSql.sql)
BENCH_ARGS := $(if $(CHINOOK),--chinook $(CHINOOK))

bench: deps install client server
	$(VPY) -m bench.pagila $(BENCH_ARGS)
	$(VPY) -m bench.scale --entities 100000 --load-seconds 20

bench-full: deps install client server
	$(VPY) -m bench.pagila $(BENCH_ARGS)
	$(VPY) -m bench.scale --entities 100000 --load-seconds 60
	$(VPY) -m bench.scale --entities 1000000 --load-seconds 60
