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
	# canary: the bundled regression export must ROLLBACK (exit 1, so `|| test $$? -eq 1` accepts exactly
	# that code and still fails the demo on any other) and the A/A export must PROMOTE (exit 0).
	$(MLPLAT) canary analyze examples/canary/regression.csv --config examples/canary/canary.yaml || test $$? -eq 1
	$(MLPLAT) canary analyze examples/canary/aa.json --config examples/canary/canary.yaml
	$(MLPLAT) canary plan --rps 1e6/h --baseline-rate 0.001 --traffic 1%,5% --effect 2,3 --runs 500
	$(MLPLAT) canary rollout --config examples/canary/canary.yaml --rps 300 --stages shadow,5%,25%,50%,100% --effect 2 --runs 300

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
	$(PY) benchmarks/canary_speed.py
	$(PY) benchmarks/canary_validity.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
