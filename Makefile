# tracklane: `make run` starts the local stack, `make test` runs the whole suite.
# Both install what they need first (idempotent: stamps skip work that is already done).

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
# jsii compares these with the Node major version it warns about (the machine's Node is 20).
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 20
# Some shells (this machine's, for one) export PYTHONDONTWRITEBYTECODE=1: then every test worker and
# every subprocess compiles boto3, moto, FastAPI and the CDK from source again (aws_cdk's import alone:
# 2.6 s instead of 0.6 s). The venv and the checkout are ours, so let Python keep its bytecode.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: install run test quick lint typecheck unit integration infra e2e layers lock synth deploy bench docs clean chromium

install: $(VENV)/.installed node_modules/.installed web/dist/.built

$(VENV)/.installed: requirements-dev.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip sync -q --python $(BIN)/python requirements-dev.lock
	$(BIN)/uv pip install -q --python $(BIN)/python --no-deps -e .
	@touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# The upload page (docs/web.md): esbuild bundles web/src and the pinned Uppy packages into web/dist.
web/dist/.built: node_modules/.installed web/build.mjs web/index.html $(wildcard web/src/*)
	node web/build.mjs
	@touch $@

# The browser tests drive Debian's Chromium (tests/e2e/test_web_page.py). Installed when missing:
# as root, or with sudo on CI (CI=true); anyone else is told the one command to run.
chromium:
	@test -x /usr/bin/chromium || { \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium; \
		elif [ "$$CI" = true ]; then sudo apt-get update -qq && sudo apt-get install -y -qq chromium; \
		else echo "The browser tests need /usr/bin/chromium: sudo apt-get install -y chromium" >&2; exit 1; fi; }

layers: $(VENV)/.installed
	$(BIN)/python -m layers.build

# `make run DATA_DIR=/some/dir` keeps the stack's tables and objects there instead of .tracklane/data
# (`DATA_DIR=` keeps nothing); `make run FRESH=1` deletes them first (docs/local-stack.md).
run: install
	$(if $(filter-out undefined,$(origin DATA_DIR)),TRACKLANE_DATA_DIR='$(DATA_DIR)') $(BIN)/tracklane run $(if $(FRESH),--fresh)

# Three workers for two cores: an integration test often waits (on a runner thread, moto, ffmpeg, a
# poll), and a third worker fills those waits. Each worker has its own moto server and ports, so
# workers never share state, and every integration test starts from an emptied store
# (tests/integration/conftest.py). Work stealing: a worker that runs out takes tests queued on a
# busy one, so the long browser, CLI and benchmark tests do not leave two workers idle at the end
# (whole suite: 304 s against 360 s with xdist's default distribution).
test: install layers lint typecheck chromium
	$(BIN)/pytest -n 3 --dist worksteal

# The loop while working: unit, infrastructure and integration tests but those marked slow (the
# 10,000-item catalogs, the 300 MB and long-audio uploads). `make test` runs every test.
quick: install layers
	$(BIN)/pytest -n 3 --dist worksteal -m "not slow" tests/unit tests/infrastructure tests/integration

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache
	$(BIN)/python -m local.import_cycles functions local client

typecheck: $(VENV)/.installed
	$(BIN)/mypy

unit: $(VENV)/.installed
	$(BIN)/pytest tests/unit

integration: $(VENV)/.installed
	$(BIN)/pytest tests/integration

infra: install layers
	$(BIN)/pytest tests/infrastructure

e2e: install chromium
	$(BIN)/pytest tests/e2e

# Re-resolve the lock after changing dependencies in pyproject.toml.
lock: $(VENV)/.installed
	$(BIN)/uv pip compile -q pyproject.toml --extra dev --extra media --extra cli --python-version 3.11 \
		--python-platform x86_64-manylinux_2_28 -o requirements-dev.lock

synth: install layers
	npx cdk synth --quiet

deploy: install layers
	npx cdk deploy

# Speed and memory targets: ratios and peaks measured in one run (see benchmarks/run.py).
bench: install
	$(BIN)/python -m benchmarks.run

# Regenerate the settings tables of docs/configuration.md from functions/settings.py and local/config.py.
docs: $(VENV)/.installed
	$(BIN)/python -m local.config_doc --write
	$(BIN)/python -m local.access_doc --write

clean:
	rm -rf cdk.out build .pytest_cache .mypy_cache .ruff_cache
