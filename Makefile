# Outposts HA. Every target installs what it needs itself: a fresh machine needs only
# the Rust toolchain (rustup) and python3.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

# Caches live outside the clone so repeat runs on one machine stay warm.
CACHE ?= $(HOME)/.cache/outposts-ha
export CARGO_TARGET_DIR ?= $(CACHE)/target
export PATH := $(HOME)/.cargo/bin:$(PATH)

# Deployment settings: CONFIG=deploy.toml (docs/deploy.example.toml) names the stack, region,
# architecture, email and parameters; STACK=, EMAIL=, ARCH= on the command line still work.
CONFIG ?=
STACK ?=
EMAIL ?=
ifneq ($(CONFIG),)
ARCH ?= $(or $(shell python3 infra/deploy_settings.py '$(CONFIG)' architecture),arm64)
endif
ARCH ?= arm64
LAMBDA_DIR := $(CACHE)/lambda-$(ARCH)

# name content-hash stamp: a changed requirements file reinstalls its venv.
stamp = $(1)/.installed-$(shell sha256sum $(2) | cut -c1-16)

TEST_VENV := $(CACHE)/venv
TEST_STAMP := $(call stamp,$(TEST_VENV),tests/requirements.txt)
CHECKOV_VENV := $(CACHE)/checkov-venv
CHECKOV_STAMP := $(call stamp,$(CHECKOV_VENV),infra/requirements-checkov.txt)
BUILD_VENV := $(CACHE)/build-venv
BUILD_STAMP := $(call stamp,$(BUILD_VENV),infra/requirements-build.txt)
CFN_GUARD_VERSION := 3.2.1
CFN_GUARD := $(CACHE)/tools/bin/cfn-guard
CFN_GUARD_STAMP := $(CACHE)/tools/.cfn-guard-$(CFN_GUARD_VERSION)
CARGO_MACHETE_VERSION := 0.9.2
CARGO_MACHETE := $(CACHE)/tools/bin/cargo-machete
CARGO_MACHETE_STAMP := $(CACHE)/tools/.cargo-machete-$(CARGO_MACHETE_VERSION)
export MOTO_SERVER := $(TEST_VENV)/bin/moto_server

STACKCTL := $(TEST_VENV)/bin/python infra/stackctl.py
# Which deployment a command acts on.
TARGET = $(if $(STACK),--stack $(STACK)) $(if $(CONFIG),--config '$(CONFIG)')
TEMPLATES := infra/template.yaml infra/protected-server.yaml

.PHONY: help test lint lint-infra test-infra functions-debug simulate demo bench build check-config deploy protect unprotect status incident drill maintenance unfence failback release redrive servers outputs delete clean

help:
	@echo "make test                     every check and test, offline (installs its tools under $(CACHE))"
	@echo "make demo                     the failover story on a local AWS emulator, no AWS account"
	@echo "make simulate [SEEDS=N] [FIRST=K] | SEED=S   random schedules of the incident protocol | replay one"
	@echo "make bench                    measure dispatch, calls, cold start, memory and a mass outage into BENCHMARKS.md"
	@echo "make deploy CONFIG=deploy.toml   build the functions and deploy the stack (or STACK= EMAIL= ARCH=; the rest kept)"
	@echo "make protect SERVER=op-… [NAME=\"Store 17\"] | SERVERS=stores.csv [PARALLEL=8]   protect servers (alarm per server)"
	@echo "make unprotect SERVER=op-…    stop protecting it"
	@echo "make status                   one row per protected server; exit 1 when one needs attention"
	@echo "make incident ID=inc-… | SERVER=op-…   an incident's timeline from the ledger"
	@echo "make drill [SERVER=op-…] [GAMEDAY=1 [YES=1]]   dry-run every workload of a server, or of every server"
	@echo "make maintenance SERVER=op-… UNTIL=+4h|ISO|now [REASON=]   suppress relaunch until then"
	@echo "make unfence INSTANCE=i-… | INCIDENT=inc-… [FORCE=1]   give fenced originals their security groups back (not their target groups)"
	@echo "make failback SERVER=op-… [YES=1]   move its stateless workloads home: originals healthy in their target groups, replacements terminated"
	@echo "make release SERVER=op-…[,op-…] | WORKLOAD=<name>   relaunch held workloads (partition, wave) on your word"
	@echo "make redrive [DRY_RUN=1]      replay the failed-events queue once the cause is fixed"
	@echo "make servers | outputs        list protected servers | print the stack's outputs"
	@echo "make delete [PURGE_BACKUPS=1] [YES=1]  delete the stack, its servers and what it created (asks for its name)"
	@echo "Every command takes CONFIG=deploy.toml (stack and region) or STACK=."

# --- tools -------------------------------------------------------------------------

define venv
	@echo "==> installing $(2) into $(1)"
	python3 -m venv $(1)
	$(1)/bin/pip install --quiet --disable-pip-version-check -r $(2)
	rm -f $(1)/.installed-*
	touch $@
endef

$(TEST_STAMP): tests/requirements.txt
	$(call venv,$(TEST_VENV),tests/requirements.txt)

$(CHECKOV_STAMP): infra/requirements-checkov.txt
	$(call venv,$(CHECKOV_VENV),infra/requirements-checkov.txt)

$(BUILD_STAMP): infra/requirements-build.txt
	$(call venv,$(BUILD_VENV),infra/requirements-build.txt)

$(CFN_GUARD_STAMP):
	@echo "==> installing cfn-guard $(CFN_GUARD_VERSION) into $(CACHE)/tools"
	CARGO_TARGET_DIR=$(CACHE)/tools-target cargo install cfn-guard --version $(CFN_GUARD_VERSION) --locked --root $(CACHE)/tools
	touch $@

$(CARGO_MACHETE_STAMP):
	@echo "==> installing cargo-machete $(CARGO_MACHETE_VERSION) into $(CACHE)/tools"
	CARGO_TARGET_DIR=$(CACHE)/tools-target cargo install cargo-machete --version $(CARGO_MACHETE_VERSION) --locked --root $(CACHE)/tools
	touch $@

# --- checks and tests --------------------------------------------------------------

# Unused dependencies fail the lint: each crate declares only what it uses.
lint: $(CARGO_MACHETE_STAMP)
	cargo fmt --all --check
	$(CARGO_MACHETE)
	cargo clippy --workspace --all-targets --locked -- -D warnings

lint-infra: $(TEST_STAMP) $(CHECKOV_STAMP) $(CFN_GUARD_STAMP)
	$(TEST_VENV)/bin/cfn-lint $(TEMPLATES)
	$(CHECKOV_VENV)/bin/checkov --quiet --compact --skip-download --framework cloudformation $(addprefix -f ,$(TEMPLATES))
	$(CFN_GUARD) validate --rules infra/rules/outposts-ha.guard $(addprefix --data ,$(TEMPLATES))
	$(CFN_GUARD) test --rules-file infra/rules/outposts-ha.guard --test-data infra/rules/outposts-ha.tests.yaml > /dev/null

# The demo's and the operator commands' tests run the functions' debug binaries. Built with
# --all-targets, so the features match `cargo test`'s (dev-dependencies included) and the
# SDK compiles once for both.
functions-debug:
	cargo build --workspace --all-targets --locked

test-infra: $(TEST_STAMP) functions-debug
	$(TEST_VENV)/bin/python -W ignore -m unittest discover -s infra/tests -v 2>&1 | grep -v "No Moto CloudFormation support"

test: $(TEST_STAMP) lint lint-infra test-infra
	cargo test --workspace --locked

# The simulator (crates/simulator): `make test` runs 2,000 schedules and the named
# regressions; this runs more, or replays one failing seed with its trace.
SEEDS ?= 20000
FIRST ?= 0
simulate: functions-debug
	@if [ -n "$(SEED)" ]; then $(CARGO_TARGET_DIR)/debug/simulate --seed $(SEED) > /dev/null; \
	  else $(CARGO_TARGET_DIR)/debug/simulate --seeds $(SEEDS) --first $(FIRST) > /dev/null; fi

# The demo and the benchmarks run the release build `make deploy` ships, built for this
# machine's CPU so it runs here; both stay out of `make test`.
HOST_ARCH := $(if $(filter aarch64 arm64,$(shell uname -m)),arm64,x86_64)
HOST_TRIPLE := $(if $(filter arm64,$(HOST_ARCH)),aarch64,x86_64)-unknown-linux-gnu

demo: $(TEST_STAMP) $(BUILD_STAMP)
	@test -d $(CARGO_TARGET_DIR)/$(HOST_TRIPLE)/release || \
	  echo "==> first run: compiling the functions (a release build, 10-20 minutes on a fresh machine; later runs skip it)"
	@$(MAKE) --no-print-directory build ARCH=$(HOST_ARCH)
	$(TEST_VENV)/bin/python infra/demo.py --artifacts $(CACHE)/lambda-$(HOST_ARCH) --keep-logs $(CACHE)/demo-logs

bench: $(TEST_STAMP)
	$(MAKE) build ARCH=$(HOST_ARCH)
	BENCH_BINARIES=$(CARGO_TARGET_DIR)/$(HOST_TRIPLE)/release BENCH_ZIPS=$(CACHE)/lambda-$(HOST_ARCH) BENCH_OUT=BENCHMARKS.md \
	  BENCH_PYTHON=$(TEST_VENV)/bin/python \
	  cargo run --quiet --locked -p outposts-ha-tests --bin bench
	$(MAKE) functions-debug
	$(CARGO_TARGET_DIR)/debug/simulate --mass-outage --out BENCHMARKS.md > /dev/null
	$(CARGO_TARGET_DIR)/debug/simulate --dispatch --out BENCHMARKS.md > /dev/null
	$(CARGO_TARGET_DIR)/debug/simulate --recovery --out BENCHMARKS.md > /dev/null

# --- deployment --------------------------------------------------------------------

build: $(BUILD_STAMP)
	@case "$(ARCH)" in arm64) t=aarch64-unknown-linux-gnu; f=--arm64;; x86_64) t=x86_64-unknown-linux-gnu; f=--x86-64;; \
	  *) echo "ARCH must be arm64 or x86_64, not $(ARCH)"; exit 2;; esac; \
	  rustup target add $$t >/dev/null; \
	  echo "==> building the functions for $(ARCH) (release; the first build takes a while)"; \
	  PATH="$(BUILD_VENV)/bin:$$PATH" cargo lambda build --release $$f --output-format zip --lambda-dir $(LAMBDA_DIR) \
	    -p alarm-handler -p relaunch -p notifier -p backup-scheduler -p operator
	@ls -l $(LAMBDA_DIR)/*/bootstrap.zip

# A bad settings file stops the deploy before the (long) build.
check-config:
	@$(if $(CONFIG),python3 infra/deploy_settings.py '$(CONFIG)' stack > /dev/null,true)

deploy: check-config build $(TEST_STAMP)
	$(STACKCTL) deploy $(TARGET) --artifacts $(LAMBDA_DIR) --param Architecture=$(ARCH) $(if $(EMAIL),--email $(EMAIL))

protect: $(TEST_STAMP)
	@test -n "$(SERVER)$(SERVERS)" || { echo "usage: make protect SERVER=op-… [NAME=\"Store 17, Main St\"] [PERIOD=60 EVALUATION_PERIODS=5 DATAPOINTS=3] | SERVERS=stores.csv [PARALLEL=8]"; exit 2; }
	$(STACKCTL) protect $(TARGET) $(if $(SERVERS),--servers '$(SERVERS)' --parallel $(or $(PARALLEL),8),--server $(SERVER) --period $(or $(PERIOD),60) --evaluation-periods $(or $(EVALUATION_PERIODS),5) --datapoints $(or $(DATAPOINTS),3) --name "$(NAME)")

unprotect: $(TEST_STAMP)
	@test -n "$(SERVER)" || { echo "usage: make unprotect SERVER=op-…"; exit 2; }
	$(STACKCTL) unprotect $(TARGET) --server $(SERVER)

status: $(TEST_STAMP)
	$(STACKCTL) status $(TARGET)

incident: $(TEST_STAMP)
	@test -n "$(ID)$(SERVER)" || { echo "usage: make incident ID=inc-… | SERVER=op-…"; exit 2; }
	$(STACKCTL) incident $(TARGET) $(if $(ID),--id $(ID),--server $(SERVER))

drill: $(TEST_STAMP)
	$(STACKCTL) drill $(TARGET) $(if $(SERVER),--server $(SERVER)) $(if $(GAMEDAY),--game-day) $(if $(YES),--yes)

maintenance: $(TEST_STAMP)
	@test -n "$(SERVER)" -a -n "$(UNTIL)" || { echo "usage: make maintenance SERVER=op-… UNTIL=+4h|2026-11-23T06:00Z|now [REASON=…]"; exit 2; }
	$(STACKCTL) maintenance $(TARGET) --server $(SERVER) --until '$(UNTIL)' $(if $(REASON),--reason '$(REASON)')

unfence: $(TEST_STAMP)
	@test -n "$(INSTANCE)$(INCIDENT)" || { echo "usage: make unfence INSTANCE=i-… | INCIDENT=inc-…"; exit 2; }
	$(STACKCTL) unfence $(TARGET) $(if $(INSTANCE),--instance $(INSTANCE)) $(if $(INCIDENT),--incident $(INCIDENT)) $(if $(FORCE),--force)

failback: $(TEST_STAMP)
	@test -n "$(SERVER)" || { echo "usage: make failback SERVER=op-…"; exit 2; }
	$(STACKCTL) failback $(TARGET) --server $(SERVER) $(if $(YES),--yes)

release: $(TEST_STAMP)
	@test -n "$(SERVER)$(WORKLOAD)" || { echo "usage: make release SERVER=op-…[,op-…] | WORKLOAD=<name> [SERVER=op-…]"; exit 2; }
	$(STACKCTL) release $(TARGET) $(if $(SERVER),--server '$(SERVER)') $(if $(WORKLOAD),--workload '$(WORKLOAD)')

redrive: $(TEST_STAMP)
	$(STACKCTL) redrive $(TARGET) $(if $(DRY_RUN),--dry-run)

servers outputs: $(TEST_STAMP)
	$(STACKCTL) $@ $(TARGET)

delete: $(TEST_STAMP)
	$(STACKCTL) delete $(TARGET) $(if $(PURGE_BACKUPS),--purge-backups) $(if $(YES),--yes)

clean:
	rm -rf $(CARGO_TARGET_DIR) $(TEST_VENV) $(CHECKOV_VENV) $(BUILD_VENV) $(CACHE)/lambda-* $(CACHE)/tools $(CACHE)/tools-target
