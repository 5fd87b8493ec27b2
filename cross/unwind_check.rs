//! cross/unwind-check's program: panics are caught when the binary is
//! linked with the target's `link_args` (every board links with rust-lld and
//! folds identical code; riscv64 also drops `.eh_frame_hdr`, and its
//! unwinder then relies on the frames registered at startup).
//!
//! Prints `caught 300 joined true` when every panic unwound and was caught.

use std::panic::catch_unwind;

/// Something to drop on the way up, as a handler's locals are.
struct Guard(u32);

impl Drop for Guard {
    fn drop(&mut self) {
        std::hint::black_box(self.0);
    }
}

#[inline(never)]
fn nested(depth: u32) -> u32 {
    let _guard = Guard(depth);
    if depth == 0 {
        panic!("unwind check at depth {depth}");
    }
    std::hint::black_box(nested(depth - 1)) + 1
}

fn main() {
    std::panic::set_hook(Box::new(|_| {}));
    let mut caught = (0..200).filter(|depth| catch_unwind(|| nested(depth % 20)).is_err()).count();
    let worker = std::thread::spawn(|| (0..100).filter(|depth| catch_unwind(|| nested(depth % 9)).is_err()).count());
    caught += worker.join().unwrap_or(0);
    let joined = std::thread::spawn(|| nested(3)).join().is_err();
    println!("caught {caught} joined {joined}");
}
