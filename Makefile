# Everything a fresh machine needs goes through these targets.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
MVN := mvn -q -B -f engine/pom.xml
ENGINE_SOURCES := engine/pom.xml $(shell find engine/src -type f 2>/dev/null)
OPERATON_JAR := engine/target/operaton/test-engine.jar
CAMUNDA_JAR := engine/target/camunda/test-engine.jar
# the benchmark's open-loop load generator, built from the Go module proxy
VEGETA := build/bin/vegeta
VEGETA_MODULE := github.com/tsenart/vegeta/v12@v12.13.0

.PHONY: install engines lint format test test-deps test-operaton test-contract-camunda campaign fuzz bench bench-deps profile run clean

install: $(INSTALLED)

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

$(OPERATON_JAR): $(ENGINE_SOURCES)
	$(MVN) package -DskipTests

$(CAMUNDA_JAR): $(ENGINE_SOURCES)
	$(MVN) -Pcamunda package -DskipTests

engines: $(OPERATON_JAR) $(CAMUNDA_JAR)

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(INSTALLED)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# nginx for the load-balancer test and wrk for the benchmark's own tests:
# Debian's packages, installed once
NGINX := $(shell command -v nginx || ls /usr/sbin/nginx 2>/dev/null)
WRK := $(shell command -v wrk)
MISSING_PACKAGES := $(strip $(if $(NGINX),,nginx-light) $(if $(WRK),,wrk))
test-deps:
ifneq ($(MISSING_PACKAGES),)
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(MISSING_PACKAGES)
endif

$(VEGETA):
	GOBIN=$(abspath build/bin) go install $(VEGETA_MODULE)

# the whole suite against Operaton, then the engine contract against Camunda 7.24
test: lint test-operaton test-contract-camunda

test-operaton: $(INSTALLED) $(OPERATON_JAR) test-deps $(VEGETA)
	ENGINE_FLAVOR=operaton $(BIN)/pytest

test-contract-camunda: $(INSTALLED) $(CAMUNDA_JAR)
	ENGINE_FLAVOR=camunda $(BIN)/pytest -m contract

# the long fault campaign: 30 trials of every fault and kill point
CAMPAIGN_TRIALS ?= 30
campaign: $(INSTALLED) $(OPERATON_JAR)
	CAMPAIGN_TRIALS=$(CAMPAIGN_TRIALS) $(BIN)/pytest -m campaign -s

# the benchmark's tools: Debian's wrk and nginx (test-deps), vegeta, matplotlib and py-spy
bench-deps: $(INSTALLED) test-deps $(VEGETA)
	$(BIN)/pip install -q -e '.[test,bench]'

# D, G, DP, GP, R, S, L, G10M side by side, pinned and unpinned, into bench/results/latest.*
# BENCH_QUICK=1 for a smoke run; PROFILE=1 adds a py-spy flame graph
bench: $(OPERATON_JAR) bench-deps
	$(BIN)/python -m bench.run $(if $(PROFILE),--profile)

# where one gateway worker's CPU goes during S at c=16, into bench/results/profile.*
profile: bench-deps
	$(BIN)/python -m bench.cpu_profile

# a longer fuzzing run than the fixed budget in `make test`
fuzz: $(INSTALLED) $(OPERATON_JAR)
	FUZZ_EXAMPLES=5000 SCHEMATHESIS_EXAMPLES=500 $(BIN)/pytest -s tests/test_fuzz.py tests/test_openapi_fuzz.py

run: $(INSTALLED) $(OPERATON_JAR)
	$(BIN)/python -m devenv.run

clean:
	rm -rf $(VENV) engine/target .run
