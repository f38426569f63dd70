# Two set-up commands: `make run` and `make test`. Each creates .venv and installs what it needs.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-dev
PORT   ?= 8888

# The one version (app/__init__.py): the package's, the image tag, the chart's appVersion.
VERSION := $(shell sed -n 's/^__version__ = "\(.*\)"$$/\1/p' app/__init__.py)

.PHONY: run test lint bench chart-test loadtest clean version

$(STAMP): pyproject.toml app/__init__.py
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
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build

version:
	@echo $(VERSION)

# The chart: render, lint and schema checks for every Kubernetes minor it claims, the README's
# install example, the version agreement (no cluster needed).
chart-test: $(STAMP)
	$(PY) -m pytest -q tests/test_chart.py tests/test_chart_versions.py tests/test_readme_install.py \
	  tests/test_release.py

# The container image (docs/install.md). The wheels are fetched on this machine (where the package
# index is reachable) for CPython 3.11 on glibc 2.36 (Debian bookworm) or older, ARCH; `docker build`
# then runs without network.
# BASE: any image with Python 3.11 as python3 (CI builds one with mmdebstrap: make image-base).
IMAGE          ?= placement-extender:$(VERSION)
BASE           ?= python:3.11-slim
ARCH           ?= $(shell uname -m)
MANYLINUX      := manylinux_2_36 manylinux_2_34 manylinux_2_31 manylinux_2_28 manylinux_2_27 \
                  manylinux_2_24 manylinux_2_17 manylinux2014 manylinux2010 manylinux1
WHEELS         := build/wheels
# What the image was built from (label io.placement-extender.source-sha256): tests/e2e/test_install.py
# refuses an image older than the source.
SOURCE_SHA     = $(shell cat pyproject.toml $$(find app -name '*.py' | LC_ALL=C sort) | sha256sum | cut -c1-64)
.PHONY: image image-base image-ref
image: $(STAMP)
	rm -rf $(WHEELS)
	$(PY) -m pip wheel -q --no-deps --wheel-dir $(WHEELS) .
	$(PY) -m pip download -q --dest $(WHEELS) --only-binary=:all: --implementation cp \
	  --python-version 3.11 $(foreach p,$(MANYLINUX),--platform $(p)_$(ARCH)) \
	  $(WHEELS)/placement_extender-$(VERSION)-py3-none-any.whl pip
	docker build --network=none -f deploy/Dockerfile --build-arg BASE=$(BASE) \
	  --build-arg VERSION=$(VERSION) --build-arg SOURCE_SHA=$(SOURCE_SHA) -t $(IMAGE) .
	@docker image inspect -f '{{.Size}}' $(IMAGE) | awk '{printf "$(IMAGE): %.0f MB\n", $$1 / 1e6}'

image-ref:
	@echo $(IMAGE)

# A Debian bookworm root with python3 only (Debian's mmdebstrap; no container registry needed),
# imported as BASE_IMAGE. Kept in build/ so that rebuilding the image does not fetch it again.
BASE_IMAGE ?= placement-extender-base:bookworm
BASE_TAR   := build/base-bookworm.tar
$(BASE_TAR):
	mkdir -p build && rm -rf $(@:.tar=.partial.tar)
	mmdebstrap --quiet --variant=minbase --include=python3 \
	  --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
	  --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/info/*' \
	  bookworm $(@:.tar=.partial.tar)
	mv $(@:.tar=.partial.tar) $@

image-base: $(BASE_TAR)
	docker import $(BASE_TAR) $(BASE_IMAGE)

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
# and a stalling API server mid-burst, a 20-minute soak, and the wake-up test (~25 min here);
# `make test` runs a short variant of the same. Needs KUBEBUILDER_ASSETS. Figures go to
# results/chaos/ and the chart to docs/img/faults.png.
.PHONY: chaos
CHAOS_RESULTS ?= results/chaos
chaos: $(STAMP)
	rm -rf $(CHAOS_RESULTS)
	CHAOS_PROFILE=full CHAOS_FIGURES=$(CHAOS_RESULTS) $(PY) -m pytest -q tests/chaos tests/e2e/test_wake.py
	$(PY) -m tests.chaos.figures $(CHAOS_RESULTS) docs/img/faults.png
