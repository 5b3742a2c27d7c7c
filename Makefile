# The two commands a new user runs: `make demo` and `make test`.
# Both create .venv when it is missing and install the package with every extra into it.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint test-oldest fuzz bench setup dot browser clean

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,all]'
	# PyTorch (CPU) is the tests' oracle and a benchmark peer, never a runtime dependency.
	$(PY) -m pip install --quiet torch==2.13.0
	touch $(STAMP)

# System tools, through apt-get where they are missing and apt-get works: Graphviz's `dot` renders the graphs;
# Debian's Chromium and its driver run the explainer page's browser tests (make test only).
dot:
	@$(call apt_install,dot,graphviz,graphs are written as .dot text instead)

browser:
	@$(call apt_install,chromedriver,chromium chromium-driver,the explainer page's browser tests cannot run)

# $(call apt_install,command,packages,what is lost without them)
apt_install = command -v $(1) >/dev/null 2>&1 || { \
	  if command -v apt-get >/dev/null 2>&1; then \
	    SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	    { $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq $(2) >/dev/null; } \
	      || echo "note: could not install $(2): $(3)"; \
	  else echo "note: $(2) missing and no apt-get: $(3)"; fi; }

demo: setup dot
	$(PY) -m tinygrad_lab report --out report && echo "The lab report is in $(CURDIR)/report/README.md"

test: lint dot browser
	$(PY) -m pytest -q
	$(MAKE) --no-print-directory test-oldest

# The engine and nn tests again, against the oldest numpy pyproject.toml claims and the oldest Python it claims
# (where this machine has it), on the package as installed from its wheel. The list lives here only.
ENGINE_TESTS := test_ops.py test_ops_shape.py test_autograd.py test_autograd_grad.py test_tensor.py test_nn.py \
                test_optim.py test_functional.py test_properties.py
OLDEST_NUMPY := 1.26.4
# python3.10 on PATH or from pyenv; without one, the oldest numpy is still tested, under $(PYTHON).
OLDEST_PYTHON ?= $(firstword $(foreach p,python3.10 $(wildcard $(HOME)/.pyenv/versions/3.10*/bin/python3.10),\
                   $(shell $(p) -c 'import sys; print(sys.executable)' 2>/dev/null)) $(PYTHON))
OLD := .venv-oldest
OLD_STAMP := $(OLD)/.installed-numpy-$(OLDEST_NUMPY)
WHEEL_STAMP := build/wheel/.built

# The wheel, rebuilt when the package changes; build/ is cleared first so no deleted module lingers in it.
$(WHEEL_STAMP): pyproject.toml README.md LICENSE $(shell find tinygrad_lab -name '*.py' -o -name py.typed -o -name 'explain_page.*') | setup
	rm -rf build
	$(PY) -m pip wheel --quiet --no-deps --wheel-dir build/wheel .
	touch $@

# The second environment, made once (again when pyproject.toml changes): the wheel's dev extra and the oldest
# numpy. It has no pip of its own; .venv's pip installs into it.
$(OLD_STAMP): pyproject.toml | $(WHEEL_STAMP)
	rm -rf $(OLD)
	$(OLDEST_PYTHON) -m venv --without-pip $(OLD)
	$(PY) -m pip --python $(OLD)/bin/python install --quiet numpy==$(OLDEST_NUMPY) "$$(ls build/wheel/*.whl)[dev]"
	touch $@

# The current wheel into it, whenever the package has changed since.
$(OLD)/.wheel: $(WHEEL_STAMP) $(OLD_STAMP)
	$(PY) -m pip --python $(OLD)/bin/python install --quiet --no-deps --force-reinstall build/wheel/*.whl
	touch $@

# The tests run from a copy outside the checkout's root, so they import the wheel's package, not ./tinygrad_lab.
test-oldest: $(OLD)/.wheel
	rm -rf $(OLD)/tests && mkdir $(OLD)/tests
	cp tests/conftest.py tests/engine_helpers.py $(addprefix tests/,$(ENGINE_TESTS)) $(OLD)/tests/
	cd $(OLD)/tests && env -u PYTHONPATH ../bin/python -c 'import sys, numpy, tinygrad_lab; \
	  assert tinygrad_lab.__file__.startswith(sys.prefix), tinygrad_lab.__file__; \
	  assert numpy.__version__ == "$(OLDEST_NUMPY)", numpy.__version__; \
	  print("engine tests on Python", sys.version.split()[0], "numpy", numpy.__version__, "from the wheel")'
	cd $(OLD)/tests && env -u PYTHONPATH ../bin/python -m pytest -q -p no:cacheprovider --rootdir . $(ENGINE_TESTS)

# Lint and format (ruff) and the type check (mypy), as configured in pyproject.toml; make test runs them first.
lint: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

# A longer run of the differential fuzzer (tests/test_fuzz.py); a failure prints the seed that replays it.
fuzz: setup
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-3000} $(PY) -m pytest -q tests/test_fuzz.py

# The benchmark's other peers (JAX jit, HIPS autograd, micrograd), for make bench only: the tests never need them.
PEERS_STAMP := $(VENV)/.installed-peers
$(PEERS_STAMP): $(STAMP)
	$(PY) -m pip install --quiet 'jax>=0.4' 'autograd>=1.6' 'micrograd>=0.1'
	touch $@

bench: setup $(PEERS_STAMP)
	$(PY) -m benchmarks

clean:
	rm -rf $(VENV) $(OLD) build *.egg-info .pytest_cache .hypothesis
