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
ifeq ($(MACHINE),Linux x86_64)
	$(BIN)/python -m pip install -q -e '.[dev,rtx]'
else
	$(BIN)/python -m pip install -q -e '.[dev]'
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
	@echo "demo figures written to $(DEMO_OUT)/figures"

test: $(VENV)/.dev
	$(BIN)/ruff check fusionlab tests benchmarks
	MYPYPATH=$$(bash tools/trt-stubs.sh $(STUBS)) $(BIN)/mypy
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) $(STUBS) build
