# The two commands a newcomer needs: `make setup`, then `make test`. See README.md.
# `make help` lists every target: the text after `## ` on a target's line is its help.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
MESHFED := $(VENV)/bin/meshfed
export MESHFED_CACHE ?= $(HOME)/.cache/meshfed
SANDBOX_DIR ?= .sandbox
SANDBOX_CLUSTERS ?= 3
# Each benchmark is stopped (SIGINT, so it still cleans up) after this many seconds.
BENCH_TIMEOUT ?= 900
LINTED := meshfed federator collectors tests bench
# `make test` on a fresh machine sets up first: scripts/setup.sh (idempotent) runs when the
# venv's stamp is missing or older than what setup reads, or when the cache's stamp is gone
# (a new or wiped $(MESHFED_CACHE)). setup.sh writes both stamps at its end.
SETUP_STAMP := $(VENV)/.meshfed-setup
SETUP_INPUTS := pyproject.toml setup.py $(wildcard scripts/*.sh scripts/*.py) \
	$(wildcard native/*.toml native/*.sh native/Cargo.lock native/src/*.rs native/redis/*)

.DEFAULT_GOAL := help
.PHONY: help setup test check unit integration fmt protos bench sandbox-up sandbox-down \
	clean-sandbox demo demo-down

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  make %-14s %s\n", $$1, $$2}' \
		$(MAKEFILE_LIST)

setup: ## venv, dev dependencies, native decoder (Rust), peers, Kubernetes + kwok from source, stubs (idempotent)
	bash scripts/setup.sh

check: ## ruff format --check, ruff, mypy (strict), import-linter
	$(VENV)/bin/ruff format --check $(LINTED)
	$(VENV)/bin/ruff check $(LINTED)
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

test: $(SETUP_STAMP) check ## setup if needed, check, then the whole suite (unit + integration)
	$(VENV)/bin/pytest

$(SETUP_STAMP): $(SETUP_INPUTS) $(if $(wildcard $(MESHFED_CACHE)/.meshfed-setup),,setup-forced)
	bash scripts/setup.sh

.PHONY: setup-forced
setup-forced:

unit: ## the unit tests only (tests/unit: pure, no sockets)
	$(VENV)/bin/pytest -m unit

integration: ## the integration tests only (tests/integration: sandbox, Redis, real peers)
	$(VENV)/bin/pytest -m integration

fmt: ## ruff format and ruff check --fix over the code, tests and benchmarks
	$(VENV)/bin/ruff format $(LINTED)
	$(VENV)/bin/ruff check --fix $(LINTED)

protos: ## regenerate the gRPC stubs from protos/ into federator/api/_generated
	bash scripts/gen-protos.sh

# Small sizes, so the whole run stays within minutes on 2 cores; the figures are a smoke
# check, not the published ones (docs/benchmarks.md has the full-size command of each).
bench: ## every benchmark in bench/ at a small size, each stopped after BENCH_TIMEOUT s (not in CI)
	$(call run_bench,bench/store_write.py --series 200 --samples 300)
	$(call run_bench,bench/trace_by_id.py --spans 100000 --reads 500)
	$(call run_bench,bench/query_range.py --series 200 --points 500 --runs 3)
	$(call run_bench,bench/remote_write.py --series 500 --rounds 10 --repeat 1)
	$(call run_bench,bench/otlp.py --seconds 8)
	$(call run_bench,bench/forward.py --events 50000)
	$(call run_bench,bench/statsd.py --seconds 2)
	$(call run_bench,bench/federator_propagation.py --clusters 2 --services 10 --changes 10 \
		--idle-seconds 30 --converge-timeout 300)
	$(call run_bench,bench/istio_propagation.py --changes 20)
	$(call run_bench,bench/drills.py --drills 10)

run_bench = @echo "==> $(1)" && timeout -s INT -k 30 $(BENCH_TIMEOUT) $(PY) $(1)

DEMO_DIR ?= .demo
demo: $(SETUP_STAMP) ## setup if needed, then the Bookinfo demo across 3 clusters (docs/demo.md)
	$(MESHFED) demo --dir $(DEMO_DIR)

demo-down: ## stop everything `make demo` started
	$(MESHFED) demo down --dir $(DEMO_DIR)

sandbox-up: ## start (or repair) a local sandbox of SANDBOX_CLUSTERS clusters in SANDBOX_DIR
	$(MESHFED) sandbox up --clusters $(SANDBOX_CLUSTERS) --dir $(SANDBOX_DIR)

sandbox-down: ## stop the sandbox in SANDBOX_DIR and remove its etcd data
	$(MESHFED) sandbox down --dir $(SANDBOX_DIR)

clean-sandbox: ## like sandbox-down, but never fails (for scripts)
	$(MESHFED) sandbox down --dir $(SANDBOX_DIR) || true
