# Entry points: `make demo` and `make test` (both install missing packages first).
BUILD ?= build
JOBS ?= $(shell nproc)

.PHONY: deps build demo test unit bench clean install-cni

deps:
	@bash scripts/deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

# The CNI plugin and the `pilus` network for podman (scripts/install_cni.sh says what it writes).
install-cni: build
	@bash scripts/install_cni.sh $(BUILD)

demo: build
	@bash scripts/demo.sh $(BUILD)

test: build
	@cd $(BUILD) && ctest --output-on-failure

unit: build
	@cd $(BUILD) && ctest --output-on-failure -L '^(unit|bpf)$$'

# Benchmarks against baselines in one run: bench/results/latest.{md,json}. QUICK=1: the short form.
bench: build
	@bash bench/run.sh $(BUILD) $(if $(QUICK),quick,)

clean:
	rm -rf $(BUILD)
