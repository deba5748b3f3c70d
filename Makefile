# sfintacct: everything a fresh machine needs is set up by these targets.
#   make test   lint, type-check, validate and build the SAM app, run every test
#   make demo   start the local stack, run the real flow, print what happened
#   make stack  run the local stack in the foreground (Ctrl-C stops it)
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON      := $(shell tools/find-python.sh)
PYTHON_313  := $(shell $(PYTHON) -c 'import sys; print(int(sys.version_info[:2] == (3, 13)))')
PYTHON_BIN  := $(dir $(PYTHON))
VENV        := .venv
SAM_VENV    := .venv-sam
PY          := $(VENV)/bin/python
SAM         := $(SAM_VENV)/bin/sam
PACKAGE     := layers/sync/sfintacct
# The core package lives in the layer; the sandbox tools import it from there.
RUN         := PYTHONPATH=layers/sync:ops:. $(PY)
export AWS_DEFAULT_REGION ?= us-east-1
export SAM_CLI_TELEMETRY := 0

.PHONY: help setup lint typecheck validate build test unit integration e2e contract stack demo bench soak clean java

help:
	@echo "make test    - set up, lint, type-check, validate + build the SAM app, run all tests"
	@echo "make demo    - run the real flow on the local stack and print what happened"
	@echo "make bench   - measure API calls, DynamoDB operations and CPU per closed deal"
	@echo "make soak    - 300 closed deals under chaos (faults, duplicates, kills), then check nothing broke"
	@echo "               (SOAK_ARGS=\"--deals 30 --seed 7\" for another size or plan)"
	@echo "make stack   - run the local stack in the foreground (Ctrl-C stops it)"
	@echo "make contract - the Intacct and Salesforce client checks, on the sandboxes or, with"
	@echo "                SFINTACCT_CONTRACT_* set, on your Intacct company and Salesforce org"

$(VENV)/.stamp: requirements-dev.txt layers/sync/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements-dev.txt
	touch $@

# The operations command (ops/sfintacct_ops, not in the Lambda layer): a launcher in the venv that puts
# the layer, ops/ and the repository on the import path and runs `python -m sfintacct_ops`.
$(VENV)/bin/sfintacct: $(VENV)/.stamp
	@printf '%s\n' '#!/bin/sh' \
	  '# sfintacct operations command (written by make setup; see README "Operations").' \
	  'bin="$$(cd "$$(dirname "$$0")" && pwd -P)"' \
	  'root="$$(dirname "$$(dirname "$$bin")")"' \
	  'PYTHONPATH="$$root/layers/sync:$$root/ops:$$root$${PYTHONPATH:+:$$PYTHONPATH}" exec "$$bin/python" -m sfintacct_ops "$$@"' \
	  > $@
	chmod +x $@

# SAM CLI pins boto3 and pydantic, so it lives in a venv of its own.
$(SAM_VENV)/.stamp:
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet aws-sam-cli==1.170.0
	touch $@

node_modules/.stamp: package.json package-lock.json
	@command -v npm >/dev/null || { echo "error: npm is missing; install Node.js 18+ (it brings npm)." >&2; exit 1; }
	npm install --no-audit --no-fund --silent
	touch $@

java:
	@command -v java >/dev/null || { echo "error: Java 17+ is missing (DynamoDB Local needs it); install e.g. openjdk-17-jre-headless." >&2; exit 1; }
	@v=$$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1); \
	  [ "$${v:-0}" -ge 17 ] || { echo "error: Java $$v found, DynamoDB Local needs Java 17+." >&2; exit 1; }

setup: $(VENV)/.stamp $(VENV)/bin/sfintacct $(SAM_VENV)/.stamp node_modules/.stamp java

lint: $(VENV)/.stamp
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(VENV)/.stamp
	$(VENV)/bin/mypy --strict $(PACKAGE) functions ops/sfintacct_ops

validate: $(SAM_VENV)/.stamp
	$(SAM) validate --lint --template template.yaml

# sam build needs python3.13 on PATH (the runtime of the functions and the layer).
build: $(SAM_VENV)/.stamp
ifeq ($(PYTHON_313),1)
	PATH="$(PYTHON_BIN):$$PATH" $(SAM) build --template template.yaml
else
	@echo "warning: python3.13 not found, skipping 'sam build'." >&2
endif

test: setup lint typecheck validate build
	$(PY) -m pytest

unit: $(VENV)/.stamp
	$(PY) -m pytest tests/unit

integration: setup
	$(PY) -m pytest tests/integration

e2e: setup
	$(PY) -m pytest tests/e2e

# With a real Salesforce org named, also a check-only deploy of the package to it (sf CLI needed).
contract: setup
	SFINTACCT_CONTRACT_REAL=1 $(PY) -m pytest tests/contract
	@if [ -n "$$SFINTACCT_CONTRACT_SALESFORCE_LOGIN_URL" ]; then tools/validate-salesforce-package.sh; \
	  else echo "No Salesforce org named: the package's check-only deploy (tools/validate-salesforce-package.sh) was not run."; fi

stack: setup
	$(RUN) -m sandbox.stack

demo: setup
	$(RUN) -m sandbox.demo

bench: setup
	$(RUN) -m sandbox.bench

soak: setup
	$(RUN) -m sandbox.soak $(SOAK_ARGS)

clean:
	rm -rf .aws-sam .pytest_cache .mypy_cache .ruff_cache .local
