# Sekisho — two commands for a fresh Debian machine: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
VAR    ?= var

.PHONY: run test install lint typecheck imports pytest browser bench clean tools

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required"'
	@sh .ci/ensure-tools.sh runtime
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $(STAMP)

## install also byte-compiles gateway/ (quick when nothing changed): the editable install
## leaves that to the first import, which never writes it where PYTHONDONTWRITEBYTECODE is
## set, so every `sekisho` command compiled ~110 modules again (0.26 -> 0.20 s a file).
install: $(STAMP)
	@$(BIN)/python -m compileall -q gateway

## run: install, then start the daemon with its embedded defaults, all on loopback: SMTP on
## 127.0.0.1:2525 (queue mode, mail for @localhost into one Maildir per recipient under
## var/maildir; try: swaks --server 127.0.0.1:2525 --to you@localhost), the web page and API on
## http://127.0.0.1:8080/ (tokens in var/tokens/), and the drop folder var/inbox -> var/outbox.
## Ctrl-C stops it gracefully (drains what is in flight).
run: install
	$(BIN)/sekisho serve

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

## browser: only the web page's tests in Debian's chromium (make test runs them too)
browser: install tools
	$(BIN)/pytest -m browser

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
