# Everything a newcomer needs: `make run` and `make test` install first when needed.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
INSTALLED := $(VENV)/.installed

# llama.cpp for the local composer, built for any x86-64 CPU: the default native build crashes here,
# and the multimodal library is not needed.
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX512=OFF -DGGML_AMX_INT8=OFF -DGGML_OPENMP=OFF -DLLAVA_BUILD=OFF

export HF_HUB_OFFLINE := 1
export ANONYMIZED_TELEMETRY := False

.PHONY: help install chromium servers run serve test test-fast check eval bench bench-llm bench-http bench-mixed soak soak-shared clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

install: $(INSTALLED) ## Create .venv and install the bot with its test and dev tools (CPU-only torch)

$(INSTALLED): pyproject.toml constraints.txt
	python3 -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	# The CPU wheel first, pinned: a looser spec would pull a multi-GB CUDA build.
	$(PIP) install --quiet -c constraints.txt torch==2.13.0
	# Compiles llama.cpp (several minutes on 2 cores); never reuse a cached build made without the flags.
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PIP) install --quiet --no-cache-dir -c constraints.txt "llama-cpp-python[server]"
	$(PIP) install --quiet -c constraints.txt -e ".[dev]"
	# The ONNX encoder, exported from the packaged model and checked against torch, in this machine's model
	# cache (BOT_MODEL_CACHE_DIR); the bot would otherwise make it on first use.
	$(PY) -m bot.models.onnx_export
	touch $@

run: install ## Install, then serve the chat page, API and widget (BOT_HOST:BOT_PORT, default 127.0.0.1:7860)
	$(PY) app.py

WORKERS ?= 1
serve: install ## Serve with WORKERS=N app processes on one port (N > 1 needs BOT_CHROMA_URL; docs/operations.md "Scaling out")
	BOT_WORKERS=$(WORKERS) $(PY) app.py

# The browser tests drive Debian's Chromium (never a downloaded browser): installed here as root, as CI
# does; otherwise `make test` stops at once, saying the command to run.
CHROMIUM := /usr/bin/chromium
chromium: ## Debian's Chromium for the browser tests (installed when run as root)
	@if [ ! -x $(CHROMIUM) ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "Installing Debian's Chromium for the browser tests…"; \
	    DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
	    [ -x $(CHROMIUM) ] || { echo "Debian's chromium package did not install $(CHROMIUM)." >&2; exit 1; }; \
	  else \
	    echo "The browser tests need Debian's Chromium at $(CHROMIUM). Install it with:" >&2; \
	    echo "  sudo apt-get install -y chromium chromium-driver" >&2; \
	    echo "then run make test again (make test-fast needs no browser)." >&2; \
	    exit 1; \
	  fi; \
	fi

# The shared-server tests (Redis limits, PostgreSQL ratings) start Debian's redis-server and PostgreSQL on
# loopback ports of their own (tests/servers.py); installed here as root, as for Chromium.
REDIS_SERVER := /usr/bin/redis-server
servers: ## Debian's redis-server and PostgreSQL for the shared-server tests (installed when run as root)
	@if [ ! -x $(REDIS_SERVER) ] || ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "Installing Debian's redis-server and PostgreSQL for the shared-server tests…"; \
	    DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server postgresql >/dev/null; \
	    [ -x $(REDIS_SERVER) ] || { echo "Debian's redis-server package did not install $(REDIS_SERVER)." >&2; exit 1; }; \
	  else \
	    echo "The shared-server tests need Debian's redis-server and PostgreSQL. Install them with:" >&2; \
	    echo "  sudo apt-get install -y redis-server postgresql" >&2; \
	    echo "then run make test again (make test-fast needs no server)." >&2; \
	    exit 1; \
	  fi; \
	fi

test: install chromium servers ## Install, then run every test (unit, integration, browser, eval gate, API schema)
	$(PY) -m pytest

test-fast: install ## The inner loop: the tests that need no model, index, server or browser (seconds)
	$(PY) -m pytest -m "not integration and not browser and not slow"

check: install ## Lint, format check, type check, the layer contracts, no import cycle, no oversized module
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -q tests/test_architecture.py

# One torch thread unless you set OMP_NUM_THREADS: the eval asks one question at a time, and on a shared
# 2-core machine two threads made each query ~10x slower; replies are identical (eval/README.md).
eval: install ## Run every question set through the engine, write reports, apply the gate (EVAL_ARGS="--compare DIR")
	$(PY) -m bot eval $(EVAL_ARGS)

bench: install ## Latency and hit-rate benchmark against the LangChain tutorial recipe
	$(PY) -m bench.ask_latency

bench-llm: install ## Generative composer (local SmolLM2): time to first token and full answer, guard fallbacks
	$(PY) -m bench.llm_latency

bench-http: install ## Load benchmark of POST /api/chat (32 clients, 5,000 requests, loopback) and start-to-ready
	$(PY) -m bench.http_load

bench-mixed: install ## Mixed traffic with 10 % hostile input (32 clients, 5,000 requests, loopback): errors, memory
	$(PY) -m bench.mixed_traffic

soak: install ## Soak: 20,000 /api/chat requests, 64 clients, 2 workers on a Chroma server (loopback, bounded)
	$(PY) -m bench.soak $(SOAK_ARGS)

soak-shared: install servers ## Soak: 2 instances x 2 workers on Chroma, Redis, PostgreSQL; then Redis down 10 s
	$(PY) -m bench.soak_shared $(SOAK_ARGS)

clean: ## Remove the virtualenv and the built index
	rm -rf $(VENV) index/chroma index/lexical index/chunks.jsonl index/manifest.json
