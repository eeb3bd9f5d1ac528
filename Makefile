# Two commands matter (see README): `make up` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
BIND ?= 127.0.0.1:8000

.PHONY: up reset-demo processes test venv deps deps-dev migrate seed lint format services bench clean libvirt deps-libvirt vendor

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(VENV)/.deps: requirements.txt | $(VENV)/bin/python
	$(PIP) install --quiet -r requirements.txt
	touch $@

$(VENV)/.deps-dev: requirements.txt requirements-dev.txt | $(VENV)/bin/python
	$(PIP) install --quiet -r requirements-dev.txt
	touch $@ $(VENV)/.deps

deps: $(VENV)/.deps
deps-dev: $(VENV)/.deps-dev

## Vendor npm assets into static/ (pinned, digest-checked; never a CDN).
vendor:
	bash .ci/vendor-uplot.sh

# Ctrl-C: honcho sends SIGTERM, then SIGKILL after a grace period it fixes at 5 s
# (honcho.manager.KILL_WAIT, no option). A worker's warm shutdown (finish running tasks,
# hand reserved messages back) can take longer on a busy machine, so `make up` gives it
# STOP_GRACE seconds. The Procfile's worker uses the threads pool: honcho signals the whole
# process group, and prefork children would die of that SIGTERM mid-task.
STOP_GRACE ?= 20
export HONCHO_WITH_GRACE = import sys, honcho.command, honcho.manager; honcho.manager.KILL_WAIT = $(STOP_GRACE); honcho.command.main(sys.argv[1:])

## Bring the whole product up on the embedded default (SQLite, filesystem broker, simulator).
up: deps vendor
	$(PY) manage.py migrate --noinput
	$(PY) manage.py collectstatic --noinput --verbosity 0
	$(PY) manage.py seed_demo
	@echo ""
	@echo "  Control plane:  http://$(BIND)/        (operators: http://$(BIND)/admin/)"
	@echo "  API:            http://$(BIND)/api/v1/"
	@echo "  Health:         http://$(BIND)/readyz"
	@echo "  Consoles:       the proxy listens on 127.0.0.1:6080 (Console button on a VM's page)"
	@echo "  Ctrl-C stops web, worker, scheduler and console proxy."
	@echo ""
	@$(MAKE) --no-print-directory processes

## Wipe the embedded default (SQLite database, broker queue, simulator guests, cache, audit
## archive, beat schedule under var/) and seed it again; stop `make up` first. var/secret_key and
## var/static stay. Refuses when DATABASE_URL points at a real database.
reset-demo: deps
	@if [ -n "$$DATABASE_URL" ]; then echo "reset-demo wipes only the embedded SQLite default: unset DATABASE_URL" >&2; exit 1; fi
	cd "$${CONTROLPLANE_VAR_DIR:-var}" && rm -rf controlplane.sqlite3* broker simulator cache audit-archive celerybeat-schedule*
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo

## Only web + worker + beat from the Procfile (the end of `make up`); Ctrl-C stops them warm.
processes:
	BIND=$(BIND) $(PY) -c "$$HONCHO_WITH_GRACE" start -f Procfile

## Run the whole test suite on PostgreSQL + Redis (started if down), with lint.
test: deps-dev libvirt
	bash .ci/services.sh
	bash .ci/system-packages.sh
	bash .ci/nova-setup.sh
	bash .ci/neutron-setup.sh
	bash .ci/vendor-js.sh --check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	bash .ci/pytest.sh $(PYTEST_ARGS)

lint: deps-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: deps-dev
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

services:
	bash .ci/services.sh

## Refresh noVNC / xterm.js in static/vendor/ from the npm pins in .ci/js/ (commit the result).
.PHONY: vendor-js
vendor-js:
	bash .ci/vendor-js.sh

## Benchmarks and the chaos run, each on a private PostgreSQL + Redis (docs/BENCHMARKS.md).
## BENCH_ARGS=--quick / CHAOS_ARGS=--quick for CI-sized counts.
bench: deps-dev
	@command -v wrk >/dev/null || { echo "Installing wrk (Debian package) for the API benchmark"; \
		apt-get update -qq && apt-get install -y -qq wrk; }
	$(PY) bench/run_all.py $(BENCH_ARGS)

.PHONY: chaos
chaos: deps-dev
	$(PY) bench/chaos/run.py --write-docs $(CHAOS_ARGS)

clean:
	rm -rf var/broker var/celerybeat-schedule*

## libvirt: a real libvirtd + QEMU (TCG) and the test guest (needs root, apt), then
## libvirt-python, which compiles against the libvirt-dev the script installed.
libvirt:
	bash .ci/libvirt-setup.sh
	$(MAKE) deps-libvirt

$(VENV)/.deps-libvirt: requirements-libvirt.txt | $(VENV)/bin/python
	$(PIP) install --quiet -r requirements-libvirt.txt
	touch $@

deps-libvirt: $(VENV)/.deps-libvirt
