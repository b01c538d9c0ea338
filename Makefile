# The README's commands. Each sets up what it needs first.
#   make book          build the book (executes every notebook) into _build/html, strictly
#   make test          everything CI checks (see below); fails if any part fails
#   make unit          unit tests of amortlib and the static checks of the book (tests/);
#                      needs no browser, root, apt or npm
#   make lint          ruff on amortlib, tests, tools, bench and the notebooks
#   make colab-test    every notebook of the table of contents under nbval, in .venv-colab
#                      (Colab's Python 3.13 and the locked versions of requirements-colab.txt);
#                      a cell fails on any warning in its output or anything on stderr
#   make browser-test  build the book and its PDF, then open every page in headless Chromium
#   make pdf           the whole book as one PDF, _build/html/amortized-inference.pdf
#   make bench         the benchmarks (bench/run.py; --quick: make bench-quick); the JAX
#                      comparison needs the optional make bench-setup (.venv-bench)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
MATHJAX_VERSION := 3.2.2
MATHJAX := .cache/mathjax/mathjax/es5/tex-chtml-full.js
# TensorFlow's C++ start-up messages are noise in logs.
export TF_CPP_MIN_LOG_LEVEL := 2

# The Colab-like environment: Colab's Python and exactly the packages of the lock file
# requirements-colab.txt (Colab's versions of what the book uses, everything else pinned too),
# installed with --no-deps and checked with `pip check`; then amortlib with --no-deps, as the
# notebooks' install cell does on Colab. There is no fallback to another Python: without
# Python $(COLAB_PYTHON_VERSION) the Colab targets stop with an error that says how to get it.
# COLAB_PYTHON is the first of python3.13 on PATH and pyenv's 3.13.* that really is 3.13;
# set it by hand to use another interpreter of that version.
COLAB_VENV := .venv-colab
COLAB_BIN := $(COLAB_VENV)/bin
COLAB_PYTHON_VERSION := 3.13
ifndef COLAB_PYTHON
COLAB_PYTHON := $(shell for p in python$(COLAB_PYTHON_VERSION) \
  $(HOME)/.pyenv/versions/$(COLAB_PYTHON_VERSION).*/bin/python$(COLAB_PYTHON_VERSION); do \
  "$$p" -c 'import sys; sys.exit(not sys.version.startswith("$(COLAB_PYTHON_VERSION)."))' \
  2>/dev/null && { command -v "$$p"; break; }; done)
endif
# The environment is rebuilt only when its inputs change: the lock file and the Python version
# (not the Makefile, not a file's date). Each stamp file is named after a hash of its inputs.
hash = $(shell cat $(1) | sha256sum | cut -c1-16)
COLAB_KEY := $(call hash,requirements-colab.txt) py$(COLAB_PYTHON_VERSION)
COLAB_STAMP := $(COLAB_VENV)/.installed-$(subst $() ,-,$(COLAB_KEY))
# amortlib's source: the notebooks' execution cache and the installed copy follow its hash.
LIBRARY := pyproject.toml $(sort $(wildcard amortlib/*.py))
AMORTLIB_KEY := $(call hash,$(LIBRARY))
BOOK_KEY := $(call hash,$(LIBRARY) requirements.txt)
# The notebooks of the table of contents, in reading order.
NOTEBOOKS = $(wildcard $(addsuffix .ipynb,$(shell sed -n 's/^ *- *file: *//p' _toc.yml)))
# Where the browser test saves a full-page screenshot of every page (a CI artifact).
SCREENSHOTS := _build/screenshots
# The book as one PDF, inside the HTML build so that the book's link to it works.
PDF := _build/html/amortized-inference.pdf

.PHONY: venv setup mathjax colab-python colab-setup book test unit lint colab-test browser-test \
  browser-check pdf bench bench-setup bench-quick clean

# `venv` is the development environment alone (what make unit and make lint need: no npm);
# setup adds MathJax for the book.
venv: $(VENV)/.installed

setup: venv $(MATHJAX)

$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	rm -rf build amortlib.egg-info
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

# MathJax 3 from the npm registry, so the book renders math with no CDN (offline readers).
mathjax: $(MATHJAX)

$(MATHJAX):
	rm -rf .cache/mathjax && mkdir -p .cache/mathjax
	cd .cache && npm pack --silent mathjax@$(MATHJAX_VERSION) > /dev/null
	tar -xzf .cache/mathjax-$(MATHJAX_VERSION).tgz -C .cache/mathjax package/es5
	mv .cache/mathjax/package .cache/mathjax/mathjax
	rm .cache/mathjax-$(MATHJAX_VERSION).tgz
	test -f $@

colab-python:
	@test -n "$(COLAB_PYTHON)" || { \
	  echo "error: the Colab-like environment needs Python $(COLAB_PYTHON_VERSION), Colab's," \
	    "and none was found (tried python$(COLAB_PYTHON_VERSION) on PATH and" \
	    "~/.pyenv/versions/$(COLAB_PYTHON_VERSION).*). Install it, e.g." \
	    "'pyenv install $(COLAB_PYTHON_VERSION)', or run make with" \
	    "COLAB_PYTHON=/path/to/python$(COLAB_PYTHON_VERSION)." >&2; exit 1; }

# Exactly the lock file: --no-deps, so pip resolves nothing; pip check, so nothing is missing;
# and pip freeze must list the lock file and nothing else.
$(COLAB_STAMP): | colab-python
	rm -rf $(COLAB_VENV)
	$(COLAB_PYTHON) -m venv $(COLAB_VENV)
	$(COLAB_BIN)/python -m pip install --quiet --no-deps -r requirements-colab.txt
	$(COLAB_BIN)/python -m pip check
	$(COLAB_BIN)/python -m pip freeze --all --exclude pip | sort -f > $(COLAB_VENV)/freeze.txt
	grep -v '^#' requirements-colab.txt | sort -f | diff - $(COLAB_VENV)/freeze.txt
	touch $@

# amortlib itself (not editable, as on Colab), reinstalled whenever its source changes. A stale
# build/ directory could put deleted modules into the install: it is removed first and after.
$(COLAB_VENV)/.amortlib-$(AMORTLIB_KEY): $(COLAB_STAMP)
	rm -rf build amortlib.egg-info $(COLAB_VENV)/.amortlib-*
	$(COLAB_BIN)/python -m pip install --quiet --no-deps --force-reinstall .
	rm -rf build amortlib.egg-info
	touch $@

colab-setup: $(COLAB_VENV)/.amortlib-$(AMORTLIB_KEY)

# Debian's Chromium for the browser test (CI runs as root on a fresh Debian machine).
/usr/bin/chromium:
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y chromium

# The execution cache (jupyter-cache) is keyed on each notebook alone: it is cleared whenever
# amortlib's source or the pins change, so the book always runs against the library as it is.
book: setup
	@if [ "$$(cat _build/.library-key 2>/dev/null)" != "$(BOOK_KEY)" ]; then \
	  echo "amortlib or the pins changed: clearing the notebooks' execution cache"; \
	  rm -rf _build/.jupyter_cache _build/jupyter_execute; fi
	$(BIN)/jupyter-book build --warningiserror --nitpick --keep-going .
	echo "$(BOOK_KEY)" > _build/.library-key
	@echo "The book is at _build/html/index.html"

# No browser here: tests marked `browser` (or in tests/test_browser.py) run in browser-test.
unit: venv
	$(BIN)/python -m pytest tests -m "not browser" --ignore=tests/test_browser.py

lint: venv
	$(BIN)/ruff check amortlib tests tools bench book

# One pytest run per notebook: every notebook runs even if one fails, and each is timed.
colab-test: colab-setup
	@status=0; for nb in $(NOTEBOOKS); do \
	  start=$$(date +%s); \
	  PYTHONPATH=tools $(COLAB_BIN)/python -m pytest -q -p no:cacheprovider -p nbval_clean \
	    --nbval-lax --nbval-current-env "$$nb" || { status=1; echo "FAILED: $$nb"; }; \
	  echo "$$nb ran in $$(( $$(date +%s) - start )) s (Colab environment)"; \
	done; exit $$status

browser-test: book browser-check

# The browser test on the existing build (make test builds once and reuses it): first its own
# self-test (the `browser` tests: each check catches its defect on a synthetic page), then the
# PDF, then every page of the book and the PDF.
browser-check: setup /usr/bin/chromium
	$(BIN)/python -m pytest -q -p no:cacheprovider -m browser tests/test_browser.py
	$(MAKE) --no-print-directory pdf
	$(BIN)/python tools/browser_check.py _build/html --screenshots $(SCREENSHOTS) --pdf $(PDF)

# The whole book as one PDF: the built HTML pages joined and printed by the browser test's
# Chromium, math typeset, figures as vectors, code wrapped (tools/make_pdf.py). Builds the book
# first if there is no build.
pdf: setup /usr/bin/chromium
	test -f _build/html/index.html || $(MAKE) --no-print-directory book
	$(BIN)/python tools/make_pdf.py _build/html --out $(PDF)

# Every part runs even if an earlier one fails; the target fails if any part failed.
test: setup colab-setup /usr/bin/chromium
	@failed=""; \
	for part in lint unit colab-test book browser-check; do \
	  start=$$(date +%s); \
	  $(MAKE) --no-print-directory $$part || failed="$$failed $$part"; \
	  echo "== make $$part: $$(( $$(date +%s) - start )) s"; \
	done; \
	if [ -n "$$failed" ]; then echo "== FAILED:$$failed"; exit 1; fi; \
	echo "== all tests passed"

# The optional benchmark environment: JAX + optax only, for the whole-loop-jitted comparison of
# make bench. Never needed by the book, the library or the tests.
BENCH_VENV := .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.installed-$(call hash,requirements-bench.txt)

bench-setup: $(BENCH_STAMP)

$(BENCH_STAMP): requirements-bench.txt
	rm -rf $(BENCH_VENV)
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet --no-deps -r requirements-bench.txt
	$(BENCH_VENV)/bin/python -m pip check
	touch $@

# make bench runs every section (about an hour on 2 quiet cores); make bench-quick one repeat of
# the short sections and of the chapters, no book build (a few minutes). Chapters run in
# .venv-colab when it exists; the JAX column needs make bench-setup first (else it is skipped).
bench: setup
	$(BIN)/python bench/run.py

bench-quick: setup
	$(BIN)/python bench/run.py --quick

clean:
	rm -rf _build .cache $(VENV) $(COLAB_VENV) $(BENCH_VENV)
