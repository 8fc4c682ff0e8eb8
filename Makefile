# fusionlab: two commands — `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STUBS := .trt-stubs
DEMO_OUT := build/demo
MACHINE := $(shell uname -sm)

.PHONY: demo test lint typecheck unit figures clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.core: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.dev: pyproject.toml | $(BIN)/python
	# torch first, pinned: a plain `torch` requirement would fetch a multi-GB CUDA build
	$(BIN)/python -m pip install -q torch==2.13.0
ifeq ($(MACHINE),Linux x86_64)
	$(BIN)/python -m pip install -q -e '.[dev,rtx,torch]'
else
	$(BIN)/python -m pip install -q -e '.[dev,torch]'
endif
	touch $(VENV)/.core $@

dot-tool:
	@bash tools/ensure-graphviz.sh

demo: $(VENV)/.core dot-tool
	@mkdir -p $(DEMO_OUT)
	$(BIN)/fusionlab models export inception3a -o $(DEMO_OUT)/inception3a.onnx
	$(BIN)/fusionlab inspect $(DEMO_OUT)/inception3a.onnx --batch 1
	$(BIN)/fusionlab predict $(DEMO_OUT)/inception3a.onnx --target classic
	$(BIN)/fusionlab figures --out $(DEMO_OUT)/figures
	@echo "demo figures written to $(DEMO_OUT)/figures: the fusion stages are inception3a-1-original.png," \
	      "-2-vertical.png, -3-horizontal.png, -4-concat.png (with .svg and .dot beside them)"

test: $(VENV)/.dev
	$(BIN)/ruff check fusionlab tests benchmarks
	MYPYPATH=$$(bash tools/trt-stubs.sh $(STUBS)) $(BIN)/mypy
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) $(STUBS) build
