# Two set-up commands: `make run` and `make test`. Each creates .venv and installs what it needs.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-dev
PORT   ?= 8888

.PHONY: run test lint bench chart-test loadtest clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev,chart,report]'
	touch $(STAMP)

run: $(STAMP)
	@echo "Try:  curl -s -XPOST localhost:$(PORT)/filter -H 'Content-Type: application/json' --data @examples/filter-gpu-pod.json"
	$(PY) -m app serve --snapshot examples/demo-cluster.yaml --port $(PORT)

test: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check app tests loadtest bench tools
	$(VENV)/bin/ruff format --check app loadtest bench tools
	$(VENV)/bin/mypy
	$(PY) -m tools.configuration --check
	$(PY) -m tools.check_docs

# docs/configuration.md, generated from the settings model (app/config.py)
.PHONY: docs
docs: $(STAMP)
	$(PY) -m tools.configuration

bench: $(STAMP)
	$(PY) -m bench.handler_bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

# Load tests (loadtest/README.md): SCENARIO=all runs every scenario in turn (~10 min here).
SCENARIO ?= all
.PHONY: loadtest
loadtest: $(STAMP)
	$(PY) -m pip install -q -e '.[load]'
	$(PY) -m loadtest.run --scenario $(SCENARIO)

# The real control plane (README: "Testing against a real control plane"). KUBEBUILDER_ASSETS
# names the directory holding etcd, kube-apiserver and kube-scheduler (and go-extender-floor).
.PHONY: e2e bench-cluster
e2e: $(STAMP)
	$(PY) -m pytest -q tests/e2e

# ARGS e.g. --sizes 1000x2000 --rounds 1 (default: 1000x2000,5000x10000, 3 rounds: ~30 min)
bench-cluster: $(STAMP)
	$(PY) -m bench.cluster_bench $(ARGS)

# Live benchmarks (bench/live_bench.py, bench/bind_bench.py); ARGS=--quick for a smaller run.
# bench-bind runs on the real API server when KUBEBUILDER_ASSETS is set, else on the stand-in.
.PHONY: bench-live bench-bind
bench-live: $(STAMP)
	$(PY) -m bench.live_bench $(ARGS)

bench-bind: $(STAMP)
	$(PY) -m bench.bind_bench $(ARGS)

# The extender process's CPU per call by how it is served (plain, mutual TLS over HTTP/2 or HTTP/1.1).
.PHONY: bench-serving
bench-serving: $(STAMP)
	$(PY) -m bench.serving_bench $(ARGS)

# simulate: the README's 100-pod example and 1,000 pending pods against 5,000 nodes.
.PHONY: bench-simulate
bench-simulate: $(STAMP)
	$(PY) -m bench.simulate_bench $(ARGS)

# Hostile-input fuzzing (tests/test_fuzz.py): 60,000 cases instead of `make test`'s 5,200 (~6 min here).
.PHONY: fuzz
fuzz: $(STAMP)
	$(PY) -m pytest -q tests/test_fuzz.py --hypothesis-profile=fuzz

# The fault suite (docs/faults.md) at the sizes of record: a replica killed, a rolling restart
# and a stalling API server mid-burst, a 20-minute soak, and the wake-up test (~35 min here);
# `make test` runs a short variant of the same. Needs KUBEBUILDER_ASSETS. Figures go to
# results/chaos/ and the chart to docs/img/faults.png.
.PHONY: chaos
CHAOS_RESULTS ?= results/chaos
chaos: $(STAMP)
	rm -rf $(CHAOS_RESULTS)
	CHAOS_PROFILE=full CHAOS_FIGURES=$(CHAOS_RESULTS) $(PY) -m pytest -q tests/chaos tests/e2e/test_wake.py
	$(PY) -m tests.chaos.figures $(CHAOS_RESULTS) docs/img/faults.png
