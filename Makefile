# The README's commands. Each sets up its own environment (.venv) first.
#   make book   build the book (executes every notebook) into _build/html
#   make test   unit tests, every notebook under nbval, and a strict (-W) book build
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
MATHJAX_VERSION := 3.2.2
MATHJAX := .cache/mathjax/mathjax/es5/tex-chtml-full.js
# TensorFlow's C++ start-up messages are noise in logs.
export TF_CPP_MIN_LOG_LEVEL := 2

.PHONY: setup book test unit notebooks build-strict clean

setup: $(VENV)/.installed $(MATHJAX)

$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

# MathJax 3 from the npm registry, so the book renders math with no CDN (offline readers).
$(MATHJAX):
	rm -rf .cache/mathjax && mkdir -p .cache/mathjax
	cd .cache && npm pack --silent mathjax@$(MATHJAX_VERSION) > /dev/null
	tar -xzf .cache/mathjax-$(MATHJAX_VERSION).tgz -C .cache/mathjax package/es5
	mv .cache/mathjax/package .cache/mathjax/mathjax
	rm .cache/mathjax-$(MATHJAX_VERSION).tgz
	test -f $@

book: setup
	$(BIN)/jupyter-book build --warningiserror --nitpick --keep-going .
	@echo "The book is at _build/html/index.html"

test: setup
	$(BIN)/python -m pytest --nbval-lax --nbval-current-env tests book
	$(MAKE) book

clean:
	rm -rf _build .cache $(VENV)
