# The two commands a newcomer needs: `make setup`, then `make test`. See README.md.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
export MESHFED_CACHE ?= $(HOME)/.cache/meshfed

.PHONY: setup test check unit integration fmt clean-sandbox

setup:
	bash scripts/setup.sh

check:
	$(VENV)/bin/ruff format --check meshfed federator collectors tests bench
	$(VENV)/bin/ruff check meshfed federator collectors tests bench
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

test: check
	$(VENV)/bin/pytest

unit:
	$(VENV)/bin/pytest -m unit

integration:
	$(VENV)/bin/pytest -m integration

fmt:
	$(VENV)/bin/ruff format meshfed federator collectors tests bench
	$(VENV)/bin/ruff check --fix meshfed federator collectors tests bench

clean-sandbox:
	$(VENV)/bin/meshfed sandbox down --dir .sandbox || true
