# fusionlab: two commands — `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STUBS := .trt-stubs
DEMO_OUT := build/demo
MACHINE := $(shell uname -sm)

FUSIONLAB ?= $(BIN)/fusionlab
HAS_RTX := import importlib.util as u, sys; sys.exit(not any(u.find_spec(m) for m in ("tensorrt_rtx", "tensorrt_rtx_bindings")))

.PHONY: demo demo-engine test lint typecheck unit figures clean

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
	@$(MAKE) --no-print-directory demo-engine

# The real engine of the same block: NVIDIA TensorRT where it and a GPU are present, else
# TensorRT-RTX, whose builder lists the engine's layers without a GPU (the rtx extra is
# installed into the venv where its wheels exist: Linux x86_64). Prints the diff's first
# lines (builder, exact match) and draws it.
demo-engine:
	@if $(BIN)/python -c "import tensorrt" 2>/dev/null && nvidia-smi -L >/dev/null 2>&1; then \
	  backend=tensorrt; \
	elif $(BIN)/python -c '$(HAS_RTX)'; then \
	  backend=rtx; \
	elif [ "$(MACHINE)" != "Linux x86_64" ]; then \
	  echo "TensorRT-RTX has no wheels for $(MACHINE): no engine built (the prediction and figures above stand)"; \
	  exit 0; \
	elif $(BIN)/python -m pip install -q -e '.[rtx]' && $(BIN)/python -c '$(HAS_RTX)'; then \
	  backend=rtx; \
	else \
	  echo "TensorRT-RTX could not be installed (pip install -e '.[rtx]' failed): no engine built"; \
	  exit 0; \
	fi; \
	echo "building the Inception (3a) block with --build $$backend and comparing with the prediction"; \
	$(FUSIONLAB) diff $(DEMO_OUT)/inception3a.onnx --batch 1 --build $$backend \
	  -o $(DEMO_OUT)/inception3a-diff.svg > $(DEMO_OUT)/inception3a-diff.txt \
	  || { cat $(DEMO_OUT)/inception3a-diff.txt; exit 1; }; \
	head -n 3 $(DEMO_OUT)/inception3a-diff.txt; \
	echo "diff written to $(DEMO_OUT)/inception3a-diff.txt, drawn in $(DEMO_OUT)/inception3a-diff.svg"

test: $(VENV)/.dev
	$(BIN)/ruff check fusionlab tests benchmarks
	MYPYPATH=$$(bash tools/trt-stubs.sh $(STUBS)) $(BIN)/mypy
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) $(STUBS) build
