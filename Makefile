# Two commands do everything on a fresh machine:
#   make run    synthesize the app (cdk-nag gate) and rehearse the whole pipeline offline
#   make test   every test tier (what CI runs)
SHELL := /bin/bash
.DEFAULT_GOAL := run

PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
LAYER_PY := 3.14
LAYER_PLATFORM := manylinux2014_aarch64

# The pinned Node LTS from package.json comes first on PATH: the CDK CLI runs on it, and so does
# jsii, which `python app.py` (synthesis, tests, rehearsal) spawns as whatever `node` PATH finds.
export PATH := $(CURDIR)/node_modules/.bin:$(PATH)

# Keep the CDK CLI and jsii offline and quiet.
export CDK_DISABLE_VERSION_CHECK := 1
export CDK_DISABLE_CLI_TELEMETRY := 1
export AWS_EC2_METADATA_DISABLED := true
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: run setup synth rehearse test lint asl bench deploy scan layer clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The Lambda dependency layer: arm64 wheels for the Lambda runtime's CPython, no bytecode.
PIP_FOR_LAMBDA := $(VENV)/bin/pip install --quiet --disable-pip-version-check --no-compile \
  --platform $(LAYER_PLATFORM) --implementation cp --python-version $(LAYER_PY) --only-binary=:all:

.build/layer.stamp: lambdas/requirements.txt $(VENV)/.installed
	rm -rf .build/layer
	$(PIP_FOR_LAMBDA) --target .build/layer/python -r lambdas/requirements.txt
	touch $@

# A custom grader module's own requirements (lambdas/reward/custom/<module>.requirements.txt or
# <module>/requirements.txt), installed the same way into .build/custom/<module>/python: its own layer.
CUSTOM_REQUIREMENTS := $(wildcard lambdas/reward/custom/*.requirements.txt lambdas/reward/custom/*/requirements.txt)

.build/custom.stamp: $(CUSTOM_REQUIREMENTS) $(VENV)/.installed
	rm -rf .build/custom
	for req in $(CUSTOM_REQUIREMENTS); do \
	  module=$$(basename $${req%.requirements.txt}); \
	  [ "$$(basename $$req)" = requirements.txt ] && module=$$(basename $$(dirname $$req)); \
	  $(PIP_FOR_LAMBDA) --target .build/custom/$$module/python -r $$req || exit 1; \
	done
	mkdir -p .build && touch $@

layer: .build/layer.stamp .build/custom.stamp

setup: $(VENV)/.installed node_modules/.installed .build/layer.stamp .build/custom.stamp

synth: setup
	rm -rf cdk.out
	npx --no-install cdk synth --quiet --output cdk.out
	$(PY) -m stacks.summary cdk.out

# make rehearse INPUT=run.json DATA=folder/ rehearses your own run input and datasets.
rehearse: setup
	$(PY) -m rehearsal $(if $(INPUT),--input '$(INPUT)') $(if $(DATA),--data '$(DATA)')

run: synth rehearse
	@echo ""
	@echo "Next steps:"
	@echo "  open .rehearsal/report.html                   the run's report (metrics, gate, stages, cost)"
	@echo "  REHEARSAL_RUNS=2 make rehearse                 a second run moves the same deployment ARN to its model, then a rollback"
	@echo "  REHEARSAL_FAIL_AT=rft make rehearse            a failed RFT keeps what finished and prints the input that resumes it"
	@echo "  REHEARSAL_APPROVAL=reject make rehearse        approval required before deployment: approve, reject or let it expire"
	@echo "  REHEARSAL_PLATFORM=bedrock make rehearse      the Bedrock road: customization jobs and Bedrock inference, no GPU quota"
	@echo "  make deploy                                    deploy the stack, then start an execution with your run input (README)"

test: setup
	$(PY) -m pytest

# The gates CI runs before the tests: lint and format (ruff), types (mypy --strict on the whole repository;
# the harness code may leave helpers unannotated, see pyproject.toml), and the definition file matches its description.
lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(PY) -m stepfunctions --check

# Regenerate stepfunctions/pipeline.asl.json from stepfunctions/pipeline.py.
asl: $(VENV)/.installed
	$(PY) -m stepfunctions

bench: setup
	$(PY) -m benchmarks

deploy: setup
	npx --no-install cdk deploy --require-approval broadening $(CDK_ARGS)

# checkov lives in its own environment: it pins an older boto3.
scan: synth
	test -x .venv-scan/bin/checkov || ($(PYTHON) -m venv .venv-scan && .venv-scan/bin/pip install --quiet checkov==3.3.30)
	.venv-scan/bin/checkov --skip-download --quiet --compact --framework cloudformation -d cdk.out

clean:
	rm -rf cdk.out .build .rehearsal .pytest_cache .mypy_cache .ruff_cache
