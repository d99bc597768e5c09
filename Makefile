# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
MLPLAT := $(VENV)/bin/mlplat
STAMP := $(VENV)/.installed
EXTRAS := bench,ingest,dev

.PHONY: install demo test test-fast lint bench clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[$(EXTRAS)]'
	touch $(STAMP)

install: $(STAMP)

# The main job on the bundled examples; each command group adds its own step below as it lands.
demo: install
	$(MLPLAT) doctor
# What batching buys: MLP 512-2048-512 on the CPU at half its ceiling; no batching, a window, mlplat's two.
	$(MLPLAT) bench --device cpu --duration 1s --warmup 0.5s

test: install
	$(PY) -m pytest

test-fast: install
	$(PY) -m pytest -m "not slow and not integration"

lint: install
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/mypy

# Benchmarks compare mlplat with a peer in the same run; peers are benchmark-only dependencies.
bench: install
	if grep -q '^[A-Za-z]' benchmarks/requirements.txt; then \
	  $(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -r benchmarks/requirements.txt; fi
	$(PY) benchmarks/startup.py
	$(PY) benchmarks/batcher_overhead.py
	$(PY) benchmarks/batcher_mlp.py
	$(PY) benchmarks/batcher_vs_ray.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
