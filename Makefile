# WasmEngine: the two commands a new machine needs are `make demo` (the
# README walkthrough, end to end) and `make test` (every test). Both install
# what is missing first.

REGISTRY ?= 127.0.0.1:5000
VERSION ?= v1
CARGO ?= cargo

.PHONY: all build deps apps images demo test lint bench load compare clean registry

all: build

build:
	$(CARGO) build --release
	@ls -l target/release/wasm_engine

deps:
	scripts/install-deps.sh docker-registry curl clang lld wasi-libc libclang-rt-14-dev-wasm32 hey systemd prometheus python3-yaml skopeo buildah umoci apache2-utils python3-jwt python3-cryptography
	@# Any kubectl will do for cross/kubernetes/check.sh (Debian's kubernetes-client conflicts with other packages of one).
	command -v kubectl >/dev/null || scripts/install-deps.sh kubernetes-client

apps: deps
	experiments/build-apps.sh

# Pushes every example as $(REGISTRY)/<name>-wasm:$(VERSION).
images: apps
	$(CARGO) build --release
	@grep -v '^[[:space:]]*\(#\|$$\)' experiments/apps.txt | while read -r name target abi wasi_cap _calls; do \
	  printf '%-40s ' "$(REGISTRY)/$$name-wasm:$(VERSION)"; \
	  target/release/wasm_engine push experiments/application/$$name/target/$$target/release/$$name.wasm \
	    $(REGISTRY)/$$name-wasm:$(VERSION) || exit 1; \
	done

demo: deps
	scripts/demo.sh

# A throw-away registry on $(REGISTRY) (loopback, temporary storage), in the
# foreground until Ctrl-C: what the README's Quick start pushes to.
registry: deps
	scripts/run-registry.sh $(REGISTRY)

test: deps apps
	$(CARGO) test --all-targets
	tests/load_check.sh

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

bench: apps
	$(CARGO) bench --bench invoke

load: deps apps
	scripts/install-deps.sh hey wrk
	benches/load.sh

# Interpreter, JIT and native on the third-party programs; installs its own
# optional tools (wasmtime from PyPI, the wasm3 runner from crates.io).
compare: deps apps
	benches/compare.sh

clean:
	$(CARGO) clean
	rm -rf experiments/application/*/target experiments/thirdparty/build
