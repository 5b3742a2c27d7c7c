# The two commands a new user runs: `make demo` and `make test`.
# Both create .venv when it is missing and install the package with every extra into it.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test fuzz bench setup dot clean

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,all]'
	# PyTorch (CPU) is the tests' oracle and a benchmark peer, never a runtime dependency.
	$(PY) -m pip install --quiet torch==2.13.0
	touch $(STAMP)

# Graphviz's `dot` renders the graphs; install it through apt-get where it is missing and apt-get works.
dot:
	@command -v dot >/dev/null 2>&1 || { \
	  if command -v apt-get >/dev/null 2>&1; then \
	    SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	    $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq graphviz >/dev/null \
	      || echo "note: could not install Graphviz (dot); graphs are written as .dot text instead"; \
	  else echo "note: Graphviz (dot) is missing; install it to render graphs"; fi; }

demo: setup dot
	$(PY) -m tinygrad_lab report --out report && echo "The lab report is in $(CURDIR)/report/README.md"

test: setup dot
	$(PY) -m pytest -q

# A longer run of the differential fuzzer (tests/test_fuzz.py); a failure prints the seed that replays it.
fuzz: setup
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-3000} $(PY) -m pytest -q tests/test_fuzz.py

bench: setup
	$(PY) -m benchmarks

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
