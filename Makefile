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
	mkdir -p out
	$(MLPLAT) rubric score examples/rubric/serving-platform.yaml --report out/rubric-decision.md --plot out/rubric-scores.png --force
	$(MLPLAT) rubric pilot examples/rubric/serving-platform.yaml --start 2026-12-01 -o out/rubric-pilot.md --force
	$(MLPLAT) sim run examples/sim/bursty.yaml --jobs 2
	$(MLPLAT) sim run examples/sim/steady.yaml --jobs 2
	mkdir -p out && rm -f out/ingest-demo.db* out/ingest-dead-letter.jsonl
	$(MLPLAT) ingest run examples/ingest/ingest.yaml --source examples/ingest/events.jsonl --store sqlite:///out/ingest-demo.db
	$(MLPLAT) ingest read card-001 --store sqlite:///out/ingest-demo.db --feature txn_count_10m
	# canary: the bundled regression export must ROLLBACK (exit 1, so `|| test $$? -eq 1` accepts exactly
	# that code and still fails the demo on any other) and the A/A export must PROMOTE (exit 0).
	$(MLPLAT) canary analyze examples/canary/regression.csv --config examples/canary/canary.yaml || test $$? -eq 1
	$(MLPLAT) canary analyze examples/canary/aa.json --config examples/canary/canary.yaml
	$(MLPLAT) canary plan --rps 1e6/h --baseline-rate 0.001 --traffic 1%,5% --effect 2,3 --runs 500
	$(MLPLAT) canary rollout --config examples/canary/canary.yaml --rps 300 --stages shadow,5%,25%,50%,100% --effect 2 --runs 300
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
	$(PY) benchmarks/rubric_mc.py
	$(PY) benchmarks/sim_vs_simfaas.py
	$(PY) benchmarks/ingest_speed.py
	$(PY) benchmarks/canary_speed.py
	$(PY) benchmarks/canary_validity.py
	$(PY) benchmarks/batcher_overhead.py
	$(PY) benchmarks/batcher_mlp.py
	$(PY) benchmarks/batcher_vs_ray.py
	$(PY) benchmarks/bench_gpu.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
