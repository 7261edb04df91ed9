# Outposts HA. Every target installs what it needs itself: a fresh machine needs only
# the Rust toolchain and python3.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

# Caches live outside the clone so repeat runs on one machine stay warm.
CACHE ?= $(HOME)/.cache/outposts-ha
export CARGO_TARGET_DIR ?= $(CACHE)/target
export PATH := $(HOME)/.cargo/bin:$(PATH)

TEST_VENV := $(CACHE)/venv
TEST_REQUIREMENTS := tests/requirements.txt
# The stamp is named after the requirements' content, so a changed pin reinstalls.
TEST_STAMP := $(TEST_VENV)/.installed-$(shell sha256sum $(TEST_REQUIREMENTS) | cut -c1-16)
export MOTO_SERVER := $(TEST_VENV)/bin/moto_server

.PHONY: help test lint unit demo clean

help:
	@echo "make test   every check and test, offline (installs moto server into $(TEST_VENV))"
	@echo "make lint   rustfmt and clippy only"
	@echo "make demo   the failover story on a local AWS emulator, no AWS account"
	@echo "make clean  remove build output and the tool venvs under $(CACHE)"

$(TEST_STAMP): $(TEST_REQUIREMENTS)
	@echo "==> installing test tools into $(TEST_VENV)"
	python3 -m venv $(TEST_VENV)
	$(TEST_VENV)/bin/pip install --quiet --disable-pip-version-check -r $(TEST_REQUIREMENTS)
	rm -f $(TEST_VENV)/.installed-*
	touch $@

lint:
	cargo fmt --all --check
	cargo clippy --workspace --all-targets --locked -- -D warnings

test: $(TEST_STAMP) lint
	cargo test --workspace --locked

demo: $(TEST_STAMP)
	@if [ ! -x "$(CARGO_TARGET_DIR)/debug/failover-demo" ]; then echo "==> first run: compiling (several minutes on a cold machine)"; fi
	cargo run --quiet --locked -p outposts-ha-tests --bin failover-demo

clean:
	rm -rf $(CARGO_TARGET_DIR) $(TEST_VENV)
