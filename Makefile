# drctl: two commands on a fresh machine.
#   make drill   runs a full DR drill on the local lab and prints its report
#   make test    runs the whole test suite (the lab is started and stopped around it)
# Everything is installed from lock files into ignored folders (.tools, .venv, .lab, localstack/node_modules).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
UV := .tools/uv/bin/uv
VENV := .venv
PY := $(VENV)/bin/python
LAB := $(PYTHON) localstack/lab.py
export UV_PYTHON_DOWNLOADS := never

.PHONY: help setup lab-install lab-up lab-down lab-status lab-env test test-unit chaos mutants drill failover bench bench-drill bench-scale bench-protect lint browser

help:
	@echo "make drill | failover | test | chaos | mutants | setup | lab-up | lab-down | lab-status | lab-env | bench | bench-drill | bench-scale | lint | browser"

$(UV): requirements-bootstrap.txt
	$(PYTHON) -m pip install --quiet --disable-pip-version-check --require-hashes --target .tools/uv \
		-r requirements-bootstrap.txt
	@touch $(UV)

# The venv is rebuilt from the lock whenever the lock or the project metadata changes.
# Bytecode is compiled at install because PYTHONDONTWRITEBYTECODE may be set; it halves drctl's start-up.
$(VENV)/.drctl-stamp: $(UV) requirements.lock pyproject.toml
	$(UV) venv --quiet --allow-existing --python "$$(command -v $(PYTHON))" $(VENV)
	$(UV) pip sync --quiet --compile-bytecode --require-hashes --python $(PY) requirements.lock
	$(UV) pip install --quiet --no-deps --compile-bytecode --python $(PY) -e .
	@touch $@

# drctl's own modules are compiled on every setup too (only changed files are): with PYTHONDONTWRITEBYTECODE set,
# an editable install would otherwise compile them on every run (0.04 s of each start-up here).
setup: $(VENV)/.drctl-stamp lab-install
	@$(PY) -m compileall -q orchestrator

lab-install: $(UV)
	@$(LAB) install

# The instance runner (a lab service) runs on the project's venv, so lab-up needs the whole setup.
lab-up: setup
	@$(LAB) up

lab-down:
	@$(LAB) down

lab-status:
	@$(LAB) status

# Usage: eval "$(make -s lab-env)"
lab-env:
	@$(LAB) env

# Headless Chromium for the HTML report's browser test (Debian's package; installing it needs root).
browser:
	@$(PYTHON) localstack/browser.py install

# The lab is brought up for the run and stopped after it; a lab that was already up is reused and left up.
# Its instances boot after 1 s instead of make drill's 3 s: the suite proves the boot gap is waited for, and
# some twenty drills of three tiers each would otherwise spend two minutes of the suite on it.
test: setup lint browser
	@DRCTL_LAB_BOOT_DELAY=$${DRCTL_LAB_BOOT_DELAY:-1} DRCTL_REQUIRE_LAB=1 $(LAB) run -- $(PY) -m pytest

# The fault suite at full scale (kills, infrastructure faults, fuzzed runbooks, corruption, secret canaries);
# it ends with one line of figures per fault class. make test runs the same tests at a short scale.
chaos: setup
	@DRCTL_CHAOS=full DRCTL_REQUIRE_LAB=1 $(LAB) run -- $(PY) -m pytest tests/chaos --timeout=3600

# Scripted breaking edits of stacks/ (tests/stacks/mutants.py), each run against the stack tests in a copy of the
# tree; prints which the tests catch and the score. About 5 minutes on a quiet machine, so not part of make test.
mutants: $(VENV)/.drctl-stamp
	$(PY) -m tests.stacks.mutants

test-unit: $(VENV)/.drctl-stamp
	$(PY) -m pytest tests/unit

# Seed the lab, drill runbooks/drill.yaml, print its report (and write an HTML one), sweep for leftovers.
# Extra drill options: make drill DRILL_ARGS="-p inject_failure=true"
drill: setup
	@$(LAB) run -- $(PY) -m localstack.lab_drill $(DRILL_ARGS)

# A real failover of the lab's shop (production stopped, standby restored and serving) and its failback.
failover: setup
	@$(LAB) run -- $(PY) -m localstack.lab_failover

bench: setup
	@if [ -f tests/bench/run.py ]; then $(LAB) run -- $(PY) -m tests.bench.run; \
	else echo "make bench: no benchmark exists yet; it arrives with the backup engine."; fi

# The orchestrator's own overhead on a generated 200-instance, 4-tier drill, beside a hand-written batched floor and
# the same drill behind EC2's throttling, with EC2 calls counted by kind (the figures come from LocalStack).
bench-drill: setup
	$(LAB) run -- $(PY) -m tests.bench.drill_overhead

# drctl protect's lag (S3 events -> sealed points) against rclone copy --checksum run every minute, one run.
# A 1-, 2- and 4-shard copy of a 20,000-object source beside rclone --transfers 32 (tests/bench/scale.py).
bench-scale: setup
	$(LAB) run -- $(PY) -m tests.bench.scale

bench-protect: setup
	$(LAB) run -- $(PY) -m tests.bench.protect_lag

lint: $(VENV)/.drctl-stamp
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
