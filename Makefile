# Each target creates .venv and installs tfopt with its dev extra on first use, and re-installs when
# pyproject.toml changes, so on a fresh machine one command is all it takes.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test bench lint clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/tfopt demo

# The whole suite on TensorFlow, then the tests marked backend_agnostic again on JAX
# (tests/conftest.py deselects the others when KERAS_BACKEND=jax). Two pytest-xdist workers, one test file each at
# a time (module fixtures are built once), keep both cores busy: most tests run single-threaded Python.
PYTEST_WORKERS ?= 2
test: $(STAMP)
	KERAS_BACKEND=tensorflow $(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadfile
	KERAS_BACKEND=jax $(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadfile -m backend_agnostic

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

lint: $(STAMP)
	$(PY) -m ruff check tfopt tests benchmarks examples

clean:
	rm -rf $(VENV) tfopt-demo .pytest_cache
