# WasmEngine: the two commands a new machine needs are `make demo` (the
# README walkthrough, end to end) and `make test` (every test). Both install
# what is missing first: `make deps` what the demo needs, `make test-deps`
# what the tests need besides (the README lists both; a test,
# newcomer::the_readme_lists_exactly_what_make_deps_installs, keeps them equal).

REGISTRY ?= 127.0.0.1:5000
VERSION ?= v1
CARGO ?= cargo
# `make install`: PREFIX/bin/wasm_engine and the systemd unit in UNITDIR
# (systemd reads /usr/local/lib/systemd/system and /usr/lib/systemd/system;
# for another PREFIX pass UNITDIR=/etc/systemd/system), all under DESTDIR
# when it is set (packaging). BINARY is what gets installed.
PREFIX ?= /usr/local
DESTDIR ?=
BINDIR ?= $(PREFIX)/bin
UNITDIR ?= $(PREFIX)/lib/systemd/system
BINARY ?= target/release/wasm_engine

.PHONY: all build deps test-deps apps demo-apps images demo test lint bench load clean registry install uninstall

all: build

build:
	$(CARGO) build --release
	@ls -l target/release/wasm_engine

# What `make demo` and `make registry` need.
deps:
	scripts/install-deps.sh docker-registry curl

# What `make test` needs besides: clang and wasi-libc for the C examples,
# the tools the interoperability and load tests run.
test-deps: deps
	scripts/install-deps.sh clang lld wasi-libc libclang-rt-14-dev-wasm32 hey systemd prometheus python3-yaml skopeo buildah umoci apache2-utils python3-jwt python3-cryptography
	@# Any kubectl will do for cross/kubernetes/check.sh (Debian's kubernetes-client conflicts with other packages of one).
	command -v kubectl >/dev/null || scripts/install-deps.sh kubernetes-client

# Every example function and the third-party programs the tests run.
apps: test-deps
	experiments/build-apps.sh

# Only the two example functions the walkthrough deploys.
demo-apps:
	scripts/build-demo-apps.sh

# The binary on PATH and the systemd unit where systemd finds it (its
# ExecStart names BINDIR). New function projects need nothing installed:
# `wasm_engine new` writes the SDK into each.
install:
	@# Built first when cargo is at hand (sudo's root may have none: then the build made before).
	@if [ "$(BINARY)" = target/release/wasm_engine ] && command -v $(CARGO) >/dev/null; then $(CARGO) build --release; fi
	@test -x $(BINARY) || { echo "make install: $(BINARY) is missing; run make build first" >&2; exit 1; }
	install -D -m 0755 $(BINARY) $(DESTDIR)$(BINDIR)/wasm_engine
	install -d $(DESTDIR)$(UNITDIR)
	sed 's|/usr/local/bin/wasm_engine|$(BINDIR)/wasm_engine|' cross/wasm-engine.service >$(DESTDIR)$(UNITDIR)/wasm-engine.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/wasm-engine.service
	@echo "installed $(DESTDIR)$(BINDIR)/wasm_engine and $(DESTDIR)$(UNITDIR)/wasm-engine.service"
	@echo "the unit needs a user and an admin token before 'systemctl enable --now wasm-engine' (cross/README.md, \"Install on a board\")"

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/wasm_engine $(DESTDIR)$(UNITDIR)/wasm-engine.service

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

test: test-deps apps
	$(CARGO) test --all-targets
	tests/load_check.sh

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

bench: apps
	$(CARGO) bench --bench invoke

load: test-deps apps
	scripts/install-deps.sh hey wrk
	benches/load.sh

clean:
	$(CARGO) clean
	rm -rf experiments/application/*/target experiments/thirdparty/build
