# targets.sh: per-target build settings, sourced by cross/build and cross/test.
#
# Sets for "$target": deb (Debian packages needed), linker, cc (C compiler for
# crates that build C, such as ring), rustflags, strip (the binutils strip for
# the target), qemu (the qemu-user command that runs the binary), qemu_prefix
# (the sysroot qemu-user needs, if any), cargo_features (extra cargo feature
# flags for the build, such as --no-default-features), cargo_config (extra
# `--config` settings for the build, such as profile overrides), link_args
# (extra rustc arguments for the final link of the binary only, such as
# linker flags: passed after `cargo rustc --`, so the dependencies' build
# cache is kept).
# shellcheck shell=bash

cargo_features=""
cargo_config=""
link_args=""
# The boards' size settings (aarch64-musl, riscv64, armv7: each binary must
# fit in 4 MiB, checked by .ci/run). docs/performance.md ("Binary size")
# measures each step per target.
#
# Size over speed outside the interpreter: the engine's own code (and with
# fat LTO the final whole-program pass), the WASI host functions, the
# validator, JSON, inflate and digests at "z" (wasmi stays at 3, wasmi_ir
# is at "s": below). Inflate
# runs on pulls, sha256 on pulls and token checks, never per wasm
# instruction: "z" rather than "s" for them saves 5 KB on riscv64.
# wasmi_ir (the interpreter's instruction set: the encoders the translator
# calls; its decoders are #[inline], so they are compiled into wasmi's own
# handlers at wasmi's level 3) at "s": 85,600 B smaller on riscv64
# (4,191,288 to 4,105,688 B); on x86_64 the same setting left the
# per-call time unchanged (invoke bench, CPU time: stock authentication
# 15.4-15.9 against 16.2-16.9 µs) and the background translation of the
# third-party programs within noise (docs/performance.md, "Binary size",
# 2026-12-07, session 8).
board_size_config="--config=profile.release.opt-level=\"z\" --config=profile.release.package.wasi-common.opt-level=\"z\" --config=profile.release.package.wiggle.opt-level=\"z\" --config=profile.release.package.wasmi_wasi.opt-level=\"z\" --config=profile.release.package.wasmparser.opt-level=\"z\" --config=profile.release.package.serde_json.opt-level=\"z\" --config=profile.release.package.zlib-rs.opt-level=\"z\" --config=profile.release.package.sha2.opt-level=\"z\" --config=profile.release.package.wasmi_ir.opt-level=\"s\""
# Linked by the toolchain's own lld (rust-lld, through the gcc-ld wrapper
# rustc ships; the cross gcc still drives the link: crt files, static libc)
# rather than GNU ld, because lld can fold identical code: that merges the many
# byte-identical monomorphized functions. Rust makes no promise that
# distinct functions have distinct addresses, so folding all of them (not
# only those marked safe to fold) is sound. cross/test runs
# cross/unwind-check for every target with link_args: panics must still be
# caught with them.
rust_gcc_ld="$(rustc --print sysroot)/lib/rustlib/$(rustc -vV | sed -n 's/^host: //p')/bin/gcc-ld"
board_link_args="-C link-arg=-fuse-ld=lld -C link-arg=-B$rust_gcc_ld -C link-arg=-Wl,--icf=all"
case "$target" in
  aarch64-unknown-linux-musl)
    deb="gcc-aarch64-linux-gnu binutils-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user"
    # The boards' size settings, with every feature (zstd included). It
    # keeps .eh_frame_hdr: musl's unwinder (LLVM's libunwind) finds the
    # frames only through it (without it no panic is caught:
    # cross/unwind-check aborts with "failed to initiate panic").
    cargo_config=$board_size_config
    link_args=$board_link_args
    linker=aarch64-linux-gnu-gcc
    cc=aarch64-linux-gnu-gcc
    rustflags="-C target-feature=+crt-static"
    strip=aarch64-linux-gnu-strip
    qemu=qemu-aarch64
    qemu_prefix=""
    ;;
  riscv64gc-unknown-linux-gnu)
    # No musl standard library for riscv64 is installable here: static glibc.
    # Without the zstd layer decoder: static glibc leaves no room for it
    # under the 4 MiB budget (docs/registries.md, "Size"). Calls between
    # functions (the feature calls) cost it 9,856 B: 4,153,416 B with them.
    # Without the project templates of `wasm_engine new` (the feature
    # templates, 33,760 B of the stripped x86_64 binary): nobody writes
    # functions on a board.
    cargo_features="--no-default-features --features blob-cache,calls"
    cargo_config=$board_size_config
    deb="gcc-riscv64-linux-gnu binutils-riscv64-linux-gnu libc6-dev-riscv64-cross qemu-user"
    linker=riscv64-linux-gnu-gcc
    cc=riscv64-linux-gnu-gcc
    rustflags="-C target-feature=+crt-static"
    # Two settings that change no behaviour, for riscv64 only (it has the
    # least room; docs/performance.md, "Binary size", 2026-12-07):
    # - The dependencies' source paths in panic locations without the cargo
    #   registry's directory (/root/.cargo/registry/src/index.crates.io-
    #   <hash>/ureq-3.5.2/src/... becomes ureq-3.5.2/src/...): 15,936 B.
    # - save-restore: functions save and restore callee-saved registers by
    #   calling libgcc's __riscv_save_N/__riscv_restore_N (gcc's
    #   -msave-restore) instead of inline loads and stores: 20,640 B, most of
    #   it in .eh_frame. Not in rustc's list of known features, so every
    #   crate warns "unknown and unstable feature"; LLVM implements it, the
    #   calling convention is unchanged, and cross/unwind-check (built with
    #   these rustflags) checks panics are still caught through such frames.
    #   It costs two jumps per call of a function that saves registers,
    #   wasmi's call and return handlers among them.
    for registry_src in "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/; do
      [[ -d $registry_src ]] && rustflags+=" --remap-path-prefix=$registry_src="
    done
    rustflags+=" -C target-feature=+save-restore"
    # The boards' link settings (lld: 4 KB smaller than GNU ld here, and it
    # does RISC-V relaxation; identical code folding: 33 KB), and no
    # .eh_frame_hdr (81 KB): in a static glibc binary crtbeginT.o registers
    # .eh_frame at startup (__register_frame_info) and libgcc's unwinder
    # searches registered frames before it looks for that table, so panics
    # are still caught (and answered 500) without it; docs/performance.md
    # ("Binary size") has the check.
    link_args="$board_link_args -C link-arg=-Wl,--no-eh-frame-hdr"
    strip=riscv64-linux-gnu-strip
    qemu=qemu-riscv64
    qemu_prefix=/usr/riscv64-linux-gnu
    ;;
  armv7-unknown-linux-gnueabihf)
    deb="gcc-arm-linux-gnueabihf binutils-arm-linux-gnueabihf libc6-dev-armhf-cross qemu-user"
    # The boards' size settings, with every feature (zstd included). With
    # them lld alone is 1.4 KB larger than GNU ld here, but folding needs
    # it. No --no-eh-frame-hdr: ARM unwinds through .ARM.exidx (EHABI),
    # not .eh_frame, so there is nothing to save (56 B).
    cargo_config=$board_size_config
    link_args=$board_link_args
    linker=arm-linux-gnueabihf-gcc
    cc=arm-linux-gnueabihf-gcc
    rustflags="-C target-feature=+crt-static"
    # The dependencies' source paths without the cargo registry's directory,
    # as on riscv64 (no behaviour changes, only the file names in a
    # dependency's panic messages): armv7 was 6,268 B over 4 MiB after this
    # session's merges without it.
    for registry_src in "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/; do
      [[ -d $registry_src ]] && rustflags+=" --remap-path-prefix=$registry_src="
    done
    strip=arm-linux-gnueabihf-strip
    qemu=qemu-arm
    qemu_prefix=/usr/arm-linux-gnueabihf
    ;;
  x86_64-unknown-linux-musl)
    deb="musl-tools"
    linker=""
    cc=musl-gcc
    rustflags="-C target-feature=+crt-static"
    strip=strip
    qemu=""
    qemu_prefix=""
    ;;
  i686-unknown-linux-gnu)
    # Not a board: a 32-bit static glibc build like armv7's that runs
    # natively here (no qemu), so that CI exercises 32-bit code paths qemu
    # cannot (the pool of linear memories needs the real /proc/self/pagemap).
    # gcc -m32 (gcc-multilib) links it and compiles ring's C.
    deb="gcc-multilib"
    linker=""
    cc=gcc
    rustflags="-C target-feature=+crt-static"
    strip=strip
    qemu=""
    qemu_prefix=""
    ;;
  *)
    echo "unknown target $target; known: aarch64-unknown-linux-musl riscv64gc-unknown-linux-gnu armv7-unknown-linux-gnueabihf x86_64-unknown-linux-musl i686-unknown-linux-gnu" >&2
    exit 2
    ;;
esac
# The cargo environment variable names for this target.
target_env=$(tr 'a-z-' 'A-Z_' <<<"$target")
cc_env=$(tr '-' '_' <<<"$target")
