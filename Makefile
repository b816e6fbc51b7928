# ChartBot developer commands. `make test` installs everything it needs.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
TOOLS_DIR ?= .tools
export DO_NOT_TRACK := 1
export TOOLS_DIR

CHARTS ?= ../shared/charts

.PHONY: venv tools services services-stop test lint-imports demo bench bench-reader bench-prep bench-usage bench-pipeline clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

venv: $(VENV)/.installed

tools:
	bash scripts/tools.sh

services: venv tools
	PYTHON=$(PY) bash scripts/services.sh start

services-stop:
	PYTHON=$(PY) bash scripts/services.sh stop

lint-imports: venv
	$(VENV)/bin/lint-imports

test: venv tools
	PYTHON=$(PY) bash scripts/test.sh

demo: venv
	$(VENV)/bin/chartbot demo

bench-reader: venv
	$(PY) -m bench.bench_reader --charts $(CHARTS)

bench-prep: venv
	$(PY) -m bench.bench_image_prep --charts $(CHARTS)

bench-usage: venv tools
	PYTHON=$(PY) bash scripts/with-services.sh $(PY) -m bench.bench_usage

bench-pipeline: venv tools
	PYTHON=$(PY) bash scripts/with-services.sh $(PY) -m bench.bench_pipeline

bench: venv tools
	$(PY) -m bench.bench_reader --charts $(CHARTS)
	$(PY) -m bench.bench_image_prep --charts $(CHARTS)
	PYTHON=$(PY) bash scripts/with-services.sh $(PY) -m bench.bench_usage
	PYTHON=$(PY) bash scripts/with-services.sh $(PY) -m bench.bench_pipeline

clean: services-stop
	rm -rf $(VENV) $(TOOLS_DIR)
