# Echo Stream — `make run` starts the gateway, `make test` runs the tests.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
RUNTIME := $(VENV)/.runtime-installed
DEV := $(VENV)/.dev-installed

.PHONY: run test lint bench bench-quick clean lock wheel docker-lint

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(RUNTIME): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e .
	touch $@

$(DEV): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@ $(RUNTIME)

run: $(RUNTIME)  ## start the gateway on 127.0.0.1:8000 (HOST, PORT honoured); the mock with no key
	HOST=$${HOST:-127.0.0.1} $(PY) -m echo_stream

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

lock: $(DEV)  ## re-pin the runtime dependencies the Docker image installs (requirements.lock)
	$(PY) -m pip install --quiet pip-tools
	CUSTOM_COMPILE_COMMAND="make lock" $(VENV)/bin/pip-compile --quiet --strip-extras \
	  --no-emit-index-url --no-emit-find-links --output-file requirements.lock pyproject.toml

wheel: $(PY)  ## build the wheel exactly as the Dockerfile does (scripts/build-wheel.sh), into dist/
	rm -rf dist
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" sh scripts/build-wheel.sh dist

docker-lint: $(DEV)  ## lint the Dockerfile with hadolint (when it is installed)
	@if command -v hadolint >/dev/null 2>&1; then hadolint Dockerfile; \
	elif [ -x $(VENV)/bin/hadolint ]; then $(VENV)/bin/hadolint Dockerfile; \
	else echo "hadolint not available: Dockerfile not linted"; fi
