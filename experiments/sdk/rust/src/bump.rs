//! A bump allocator for functions that run once per instance.
//!
//! WasmEngine runs every invocation in a fresh instance and throws it away
//! afterwards, so memory never needs to be freed: allocation is a pointer
//! bump, `dealloc` does nothing, and the general-purpose allocator's set-up
//! and bookkeeping (a large share of a short call's instructions under an
//! interpreter) disappear. Use it with
//! `#[global_allocator] static ALLOCATOR: wasm_engine_sdk::BumpAllocator = wasm_engine_sdk::BumpAllocator;`
//! only in functions whose one call allocates a bounded amount.

#[cfg(target_arch = "wasm32")]
use core::alloc::{GlobalAlloc, Layout};
#[cfg(target_arch = "wasm32")]
use core::cell::Cell;

#[cfg(target_arch = "wasm32")]
const PAGE_BYTES: usize = 65_536;

/// Never frees; grows linear memory with `memory.grow` as needed. Only
/// implemented on `wasm32`.
pub struct BumpAllocator;

#[cfg(target_arch = "wasm32")]
struct State {
    next: Cell<usize>,
    end: Cell<usize>,
}

// SAFETY: wasm32 modules here are single-threaded.
#[cfg(target_arch = "wasm32")]
unsafe impl Sync for State {}

#[cfg(target_arch = "wasm32")]
static STATE: State = State {
    next: Cell::new(0),
    end: Cell::new(0),
};

#[cfg(target_arch = "wasm32")]
unsafe impl GlobalAlloc for BumpAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let align = layout.align();
        let start = (STATE.next.get() + align - 1) & !(align - 1);
        let Some(end) = start.checked_add(layout.size()) else {
            return core::ptr::null_mut();
        };
        if start == 0 || end > STATE.end.get() {
            return grow_and_alloc(layout);
        }
        STATE.next.set(end);
        start as *mut u8
    }

    unsafe fn dealloc(&self, _ptr: *mut u8, _layout: Layout) {}

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // Growing the most recent allocation in place is the common case
        // (a String being pushed to).
        if ptr as usize + layout.size() == STATE.next.get()
            && ptr as usize + new_size <= STATE.end.get()
        {
            STATE.next.set(ptr as usize + new_size);
            return ptr;
        }
        // SAFETY: as the default `realloc`.
        unsafe {
            let new = self.alloc(Layout::from_size_align_unchecked(new_size, layout.align()));
            if !new.is_null() {
                core::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
            }
            new
        }
    }
}

#[cfg(target_arch = "wasm32")]
unsafe extern "C" {
    /// Where the linker put the end of static data and the stack: the heap
    /// starts here (wasm-ld defines it).
    static __heap_base: u8;
}

#[cfg(target_arch = "wasm32")]
#[cold]
fn grow_and_alloc(layout: Layout) -> *mut u8 {
    if STATE.next.get() == 0 {
        // First allocation: use the rest of the initial memory before growing
        // it. Growing is costly here: the engine reallocates (copies) the
        // whole memory and zeroes the new pages.
        // Only the symbol's address is taken, which is safe.
        let heap_base = (&raw const __heap_base) as usize;
        STATE.next.set(heap_base);
        STATE
            .end
            .set(core::arch::wasm32::memory_size(0) * PAGE_BYTES);
        let align = layout.align();
        let start = (heap_base + align - 1) & !(align - 1);
        if let Some(end) = start
            .checked_add(layout.size())
            .filter(|end| *end <= STATE.end.get())
        {
            STATE.next.set(end);
            return start as *mut u8;
        }
    }
    let pages = (layout.size() + layout.align()).div_ceil(PAGE_BYTES).max(1);
    let old_pages = core::arch::wasm32::memory_grow(0, pages);
    if old_pages == usize::MAX {
        return core::ptr::null_mut();
    }
    let region_start = old_pages * PAGE_BYTES;
    let region_end = region_start + pages * PAGE_BYTES;
    // Continue from the old region when it ends where the new one starts.
    let next = if STATE.end.get() == region_start && STATE.next.get() != 0 {
        STATE.next.get()
    } else {
        region_start
    };
    STATE.next.set(next);
    STATE.end.set(region_end);
    let align = layout.align();
    let start = (next + align - 1) & !(align - 1);
    STATE.next.set(start + layout.size());
    start as *mut u8
}
