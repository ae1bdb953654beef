# Echo Stream — `make run` starts the gateway, `make test` runs the tests.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
RUNTIME := $(VENV)/.runtime-installed
DEV := $(VENV)/.dev-installed

.PHONY: run test lint bench bench-quick clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(RUNTIME): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e .
	touch $@

$(DEV): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@ $(RUNTIME)

run: $(RUNTIME)  ## start the gateway on :8000 (PORT honoured); mock provider when no key is set
	$(PY) -m echo_stream

test: $(DEV)  ## the whole test suite
	$(PY) -m pytest

lint: $(DEV)  ## ruff and mypy --strict
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/mypy

bench: $(DEV)  ## benchmarks: direct upstream vs gateway vs nginx vs LiteLLM (several minutes)
	$(PY) -m bench.run

bench-quick: $(DEV)  ## a few requests per scenario, to check the bench works
	$(PY) -m bench.run --quick

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
