# Sekisho — two commands for a fresh Debian machine: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
VAR    ?= var

.PHONY: run test install lint typecheck imports pytest bench clean tools

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required"'
	@sh .ci/ensure-tools.sh runtime
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

## run: install, then disarm the bundled samples into $(VAR)/outbox with the default policy
## (the daemon front ends — SMTP, drop folder, HTTP — replace this target when they land)
run: install
	@mkdir -p $(VAR)/outbox
	$(BIN)/sekisho disarm $$(find samples -type f ! -name '*.py' ! -name catalog.yaml | sort) \
	  --out-dir $(VAR)/outbox; \
	  rc=$$?; echo "reports and outputs: $(VAR)/outbox (exit $$rc: 0 all ok, 3 some blocked)"; \
	  [ $$rc -le 3 ]

tools:
	@sh .ci/ensure-tools.sh test

lint: install
	$(BIN)/ruff check gateway tests samples $(wildcard bench)

typecheck: install
	$(BIN)/mypy

imports: install
	$(BIN)/lint-imports

pytest: install tools
	$(BIN)/pytest -n 2 --dist loadgroup

## test: the whole suite — lint, types, import contracts, unit/stage/integration/corpus tests
test: lint typecheck imports pytest

## bench: PDF, Office and mail benchmarks (each under ~3 min on 2 cores; corpora are
## generated once under bench/out/). Add BENCH_ARGS=--write-results to record them.
bench: install tools
	$(BIN)/python -m bench.pdf $(BENCH_ARGS)
	$(BIN)/python -m bench.office $(BENCH_ARGS)
	$(BIN)/python -m bench.mail $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(VAR) .pytest_cache .mypy_cache .ruff_cache build *.egg-info
