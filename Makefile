# Two commands set everything up on a fresh clone: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
# Any other torch spec downloads a multi-GB CUDA build on machines without a local wheel.
TORCH_SPEC ?= torch==2.13.0
PY := $(VENV)/bin/python
STAMP := $(VENV)/.maan-installed

.PHONY: demo test test-fast test-gpu bench bench-deps clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[test]"
	touch $(STAMP)

# the real-data section runs when the project's eegmat recordings sit beside the checkout
demo: $(STAMP)
	$(VENV)/bin/maan demo $(if $(wildcard ../shared/data/eegmat),--real-data ../shared/data/eegmat)

test: $(STAMP)
	$(PY) -m pytest -q

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

# on a machine with a CUDA GPU (and a CUDA build of torch: TORCH_SPEC=torch)
test-gpu: $(STAMP)
	$(PY) -m pytest -q --gpu -m gpu

bench-deps: $(STAMP)
	$(PY) -m pip install -q -e ".[bench]"
	$(PY) -m pip install -q --no-deps torcheeg

bench: bench-deps
	$(PY) benchmarks/preprocess.py

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache
