# Quick start:  make test   (set up .venv + data, run every test, on both cores)
#               make test-fast   (the same without the slow end-to-end, fault and simulation tests)
#               make run    (set up .venv + data, run python run_all.py; ARGS="..." passes options)
# GPU machines: make run GPU=1   (installs mxnet-cu112 instead of the CPU mxnet, never both)
VENV     := .venv
BIN      := $(VENV)/bin
GPU      ?=
REQ      := $(if $(GPU),requirements-gpu.txt,requirements.txt)
OTHER    := $(if $(GPU),mxnet,mxnet-cu112)
STAMP    := $(VENV)/.installed-$(if $(GPU),gpu,cpu)
ARGS     ?=
# pytest-xdist workers (one MXNet thread each, tests/conftest.py). Each test file runs on one
# worker (--dist loadfile), the longest files first (tests/conftest.py): a module's fixtures
# (a results folder its tests change in turn, a Ray instance) are built once. (--dist
# loadgroup would spread files further, but pytest-xdist 3.8 cannot rename pytest 9's node
# ids, so its groups are silently ignored.)
TEST_WORKERS ?= 2
PYTEST   := $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: setup setup-dev data test test-fast run bench report error-rates clean

setup: $(STAMP) data
setup-dev: $(VENV)/.installed-dev data

$(BIN)/python:
	@py=$$(PYTHON="$(PYTHON)" sh scripts/check_python.sh) && echo "creating $(VENV) with $$py" && "$$py" -m venv $(VENV)

# Stamps make a second `make` fast; they are redone when a requirements file changes.
$(STAMP): $(REQ) pyproject.toml | $(BIN)/python
	@# The CPU and CUDA builds are one module in two distributions: remove the other first.
	@$(BIN)/pip uninstall -y -q $(OTHER) >/dev/null 2>&1 || true
	$(BIN)/pip install -q -r $(REQ)
	$(BIN)/pip install -q --no-deps -e .
	@rm -f $(VENV)/.installed-cpu $(VENV)/.installed-gpu $(VENV)/.installed-dev
	@touch $@

$(VENV)/.installed-dev: requirements-dev.txt requirements-ray.txt $(STAMP)
	$(BIN)/pip install -q -r requirements-dev.txt
	@touch $@

data: $(STAMP)
	@sh scripts/ensure_data.sh $(BIN)/python

test: setup-dev
	$(PYTEST) $(ARGS)

test-fast: setup-dev
	$(PYTEST) -m "not slow" $(ARGS)

run: setup
	$(BIN)/python run_all.py $(ARGS)

bench: setup
	$(BIN)/python -m gluon_resnet.tools.bench $(ARGS)

# The verdict procedure's error rates and power, measured by simulating the whole
# --until-decided loop (the figures quoted in docs/statistics.md).
error-rates: setup-dev
	$(BIN)/python -m pytest tests/test_decide.py tests/test_collapse.py tests/test_locked_plan.py -q -s -p no:cacheprovider \
	    -k "false_positives or unequal_spreads or at_the_margin or found_equivalent or found_better \
	        or collapsing_arm or symmetric_collapses or skewed or joint or detectable \
	        or skew_and_falls or final_through"

report: setup
	$(BIN)/python run_all.py --report-only $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
