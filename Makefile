# Two commands do everything on a fresh machine:
#   make run PROMPT="a red ball bouncing on green grass"   -> set up, write out/video.mp4 with the embedded model
#   make test                                              -> set up, lint, run the whole suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
MODEL_DIR ?= models/embedded
TINY_MODEL_DIR := models/tiny-ltx
PROMPT ?= a red ball bouncing on green grass
ASPECT ?= 16:9
RESOLUTION ?= 540p
DURATION ?= 5s
OUT ?= out/video.mp4

.PHONY: setup model run test lint serve bench

$(BIN)/dreamreel: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first and pinned: the CPU wheel; an unpinned torch pulls a multi-GB CUDA build.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[test,postgres]'
	touch $@

setup: $(BIN)/dreamreel

# models/embedded is committed; the tiny random model (for code-path benchmarks) is built on demand.
$(TINY_MODEL_DIR)/model_index.json: | setup
	$(BIN)/dreamreel build-tiny-model $(TINY_MODEL_DIR)

model: $(MODEL_DIR)/model_index.json

run: setup model
	$(BIN)/dreamreel generate "$(PROMPT)" --model-dir $(MODEL_DIR) --aspect-ratio $(ASPECT) \
		--resolution $(RESOLUTION) --duration $(DURATION) -o $(OUT)

lint: setup
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/lint-imports --no-cache

# The store contract suite and the PostgreSQL tests need a real server: the machine's, or a private one.
# The playground's browser tests drive Debian's Chromium (tests/acceptance/test_playground.py).
test: setup lint
	test -x /usr/bin/chromium || { SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }
	url=$$(scripts/ensure_postgres.sh) && DREAMREEL_TEST_POSTGRES_URL=$$url $(BIN)/python -m pytest --durations=15

serve: setup model
	$(BIN)/dreamreel serve --model-dir $(MODEL_DIR) --data-dir data

# Every benchmark of bench/run_all.py, one at a time under /tmp/bench.lock; prints each table and rewrites the
# marked sections of docs/benchmarks.md. BENCH_ARGS passes options: "--only overhead,wakeup", "--dry-run", "--list".
BENCH_ARGS ?=
bench: setup model $(TINY_MODEL_DIR)/model_index.json
	command -v wrk >/dev/null || { SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk; }
	url=$$(scripts/ensure_postgres.sh) && DREAMREEL_TEST_POSTGRES_URL=$$url $(BIN)/python bench/run_all.py $(BENCH_ARGS)
