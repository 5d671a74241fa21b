# infersight: `make demo` (set up, build the task models, run the main job) and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
MODELS := tasks/digits/models/digits-fp32.onnx.card.json tasks/charlm/models/charlm-fp32.onnx.card.json
DEMO_DB ?= infersight.db
MLPERF  ?= ../shared/data/mlperf/v4.1 ../shared/data/mlperf/v5.1
APP      ?= 1
APP_PORT ?= 8501

.PHONY: setup models demo sweep-demo test bench clean postgres chromium

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	touch $(STAMP)

models: $(MODELS)

tasks/digits/models/digits-fp32.onnx.card.json: $(STAMP) tasks/_build.py tasks/digits/build_model.py tasks/digits/_numpy_cnn.py tasks/digits/task.yaml
	$(BIN)/infersight build digits

tasks/charlm/models/charlm-fp32.onnx.card.json: $(STAMP) tasks/_build.py tasks/charlm/build_model.py tasks/charlm/_numpy_gru.py tasks/charlm/_corpus.py tasks/charlm/task.yaml
	$(BIN)/infersight build charlm

# The main job: measure digits (fp32 and int8) under single_stream, offline and server, and the
# generative charlm under interactive, into $(DEMO_DB); run the shipped demo sweep (onnxruntime and
# OpenVINO, fp32 and int8, 1 and 2 cores, four scenarios); import the published MLPerf v4.1 and v5.1 results
# beside them; write a run report and a decision report ("best system for resnet50 Server under
# p99 15 ms by cost") under build/; finally start the Streamlit app (app.py) on that store and print
# its URL (Ctrl-C stops it; `make demo APP=0` skips it, for CI and scripts).
demo: models
	$(BIN)/infersight system
	$(BIN)/infersight run digits --backend onnxruntime --scenario single_stream --db $(DEMO_DB)
	$(BIN)/infersight run digits --backend onnxruntime --scenario offline --db $(DEMO_DB)
	$(BIN)/infersight run digits --backend onnxruntime --scenario offline --model-variant int8 --db $(DEMO_DB)
	$(BIN)/infersight run digits --backend onnxruntime --scenario server --threads 1 --db $(DEMO_DB)
	$(BIN)/infersight run charlm --backend onnxruntime --scenario interactive --db $(DEMO_DB)
	$(BIN)/infersight sweep tasks/digits/sweep-demo.yaml --db $(DEMO_DB)
	$(BIN)/infersight runs --limit 30 --db $(DEMO_DB)
	if [ -n "$(wildcard $(MLPERF))" ]; then $(BIN)/infersight import mlperf $(wildcard $(MLPERF)) --db $(DEMO_DB); fi
	$(BIN)/infersight runs --source mlperf --limit 10 --db $(DEMO_DB)
	@echo "results: $(abspath $(DEMO_DB)) (try: $(BIN)/infersight show 1 --db $(DEMO_DB))"
	@mkdir -p build && $(BIN)/infersight report run 1 --db $(DEMO_DB) --out $(abspath build/demo-run-report.html)
	@if [ -n "$(wildcard $(MLPERF))" ]; then \
	  $(BIN)/infersight report decision --task resnet50 --scenario server --max-p99-ms 15 --min-accuracy-ratio 0.99 \
	    --objective cost --db $(DEMO_DB) --out $(abspath build/demo-decision-report.html); \
	else \
	  $(BIN)/infersight report decision --task digits --scenario offline --min-accuracy-ratio 0.99 \
	    --objective throughput --db $(DEMO_DB) --out $(abspath build/demo-decision-report.html); \
	fi
	@if [ "$(APP)" != "0" ]; then \
	  echo "the app: http://localhost:$(APP_PORT) (Ctrl-C stops it; make demo APP=0 skips it)"; \
	  $(BIN)/streamlit run app.py --server.headless true --server.port $(APP_PORT) \
	    --browser.gatherUsageStats false -- --db $(DEMO_DB); \
	fi

# A small shipped sweep (tasks/digits/sweep-demo.yaml: onnxruntime and OpenVINO, fp32 and int8,
# 1 and 2 cores, single_stream, offline, multi_stream and server; quick runs, a few minutes on 2 cores)
# into $(DEMO_DB).
# Running it again resumes the sweep: finished cells are not measured twice.
sweep-demo: models
	$(BIN)/infersight sweep tasks/digits/sweep-demo.yaml --db $(DEMO_DB)

# The PostgreSQL server binaries the store tests need (tests/_postgres.py starts a throwaway
# cluster from them): installed from apt if missing, nothing to do when already there.
postgres:
	@if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
	  echo "postgresql: $$(ls -d /usr/lib/postgresql/*/bin | tr '\n' ' ')already installed"; \
	else \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; \
	fi

# Debian's chromium for the report test that opens a report in a real browser with the network
# blocked (Playwright drives it; `playwright install` is never needed): installed from apt if missing.
chromium:
	@if [ -x /usr/bin/chromium ]; then \
	  echo "chromium: /usr/bin/chromium already installed"; \
	else \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	fi

test: models postgres chromium
	$(BIN)/python -m pytest -q

bench: models
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) tasks/*/models *.egg-info .pytest_cache
