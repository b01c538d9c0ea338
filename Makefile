# The README's commands. Each sets up what it needs first.
#   make book          build the book (executes every notebook) into _build/html, strictly
#   make test          everything CI checks (see below); fails if any part fails
#   make unit          unit tests of amortlib and the static checks of the book (tests/)
#   make colab-test    every notebook of the table of contents under nbval, in .venv-colab:
#                      Colab's TensorFlow, TFP, tf-keras and numpy plus `pip install .`
#   make browser-test  build the book and its PDF, then open every page in headless Chromium
#   make pdf           the whole book as one PDF, _build/html/amortized-inference.pdf
#   make bench         the benchmarks (bench/run.py)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
MATHJAX_VERSION := 3.2.2
MATHJAX := .cache/mathjax/mathjax/es5/tex-chtml-full.js
# TensorFlow's C++ start-up messages are noise in logs.
export TF_CPP_MIN_LOG_LEVEL := 2

# The Colab-like environment: only these four packages are pinned (Google Colab's versions,
# mid-2026); everything else comes from `pip install .`, that is from amortlib's own loose
# requirements in pyproject.toml, as it would on Colab. Chapters also import SciPy and
# scikit-learn, which Colab preinstalls: they are added at the versions of requirements.txt
# (which match Colab's), and so is the test runner (pytest, nbval, ipykernel).
COLAB_VENV := .venv-colab
COLAB_BIN := $(COLAB_VENV)/bin
COLAB_PINS := tensorflow==2.20.0 tensorflow-probability==0.25.0 tf-keras==2.20.1 numpy==2.1.3
COLAB_PREINSTALLED = $(shell grep -E '^(scipy|scikit-learn)==' requirements.txt)
RUNNER_PINS = $(shell grep -E '^(pytest|nbval|ipykernel)==' requirements.txt)
# The notebooks of the table of contents, in reading order.
NOTEBOOKS = $(wildcard $(addsuffix .ipynb,$(shell sed -n 's/^ *- *file: *//p' _toc.yml)))
# Where the browser test saves a full-page screenshot of every page (a CI artifact).
SCREENSHOTS := _build/screenshots
# The book as one PDF, inside the HTML build so that the book's link to it works.
PDF := _build/html/amortized-inference.pdf

.PHONY: setup mathjax colab-setup book test unit colab-test browser-test browser-check pdf bench clean

setup: $(VENV)/.installed $(MATHJAX)

$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
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

# One resolve for everything, so pip cannot move the Colab pins; then check that it did not.
$(COLAB_VENV)/.installed: Makefile requirements.txt pyproject.toml
	rm -rf $(COLAB_VENV)
	$(PYTHON) -m venv $(COLAB_VENV)
	$(COLAB_BIN)/python -m pip install --quiet --upgrade pip
	$(COLAB_BIN)/python -m pip install --quiet $(COLAB_PINS) $(COLAB_PREINSTALLED) $(RUNNER_PINS) .
	$(COLAB_BIN)/python -m pip check
	$(COLAB_BIN)/python -c 'import sys; from importlib.metadata import version; \
	  bad = [p for p in sys.argv[1:] if version(p.split("==")[0]) != p.split("==")[1]]; \
	  sys.exit(f"not the Colab versions: {bad}" if bad else 0)' $(COLAB_PINS)
	touch $@

# amortlib itself is reinstalled (not editable, as on Colab) whenever its source changes.
$(COLAB_VENV)/.amortlib: $(COLAB_VENV)/.installed $(wildcard amortlib/*.py) pyproject.toml
	$(COLAB_BIN)/python -m pip install --quiet --no-deps --force-reinstall .
	touch $@

colab-setup: $(COLAB_VENV)/.amortlib

# Debian's Chromium for the browser test (CI runs as root on a fresh Debian machine).
/usr/bin/chromium:
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y chromium

book: setup
	$(BIN)/jupyter-book build --warningiserror --nitpick --keep-going .
	@echo "The book is at _build/html/index.html"

unit: setup /usr/bin/chromium
	$(BIN)/python -m pytest tests

# One pytest run per notebook: every notebook runs even if one fails, and each is timed.
colab-test: colab-setup
	@status=0; for nb in $(NOTEBOOKS); do \
	  start=$$(date +%s); \
	  $(COLAB_BIN)/python -m pytest -q -p no:cacheprovider --nbval-lax --nbval-current-env \
	    "$$nb" || { status=1; echo "FAILED: $$nb"; }; \
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
	for part in unit colab-test book browser-check; do \
	  start=$$(date +%s); \
	  $(MAKE) --no-print-directory $$part || failed="$$failed $$part"; \
	  echo "== make $$part: $$(( $$(date +%s) - start )) s"; \
	done; \
	if [ -n "$$failed" ]; then echo "== FAILED:$$failed"; exit 1; fi; \
	echo "== all tests passed"

bench: setup
	$(BIN)/python bench/run.py

clean:
	rm -rf _build .cache $(VENV) $(COLAB_VENV)
