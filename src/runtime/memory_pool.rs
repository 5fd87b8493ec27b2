//! Linear memories reused between calls (issue 14): the buffers behind
//! wasmi's linear memories, handed to wasmi through the hook
//! `wasmi_core::set_linear_memory_allocator` (vendor/wasmi_core/PATCHES.md)
//! and made all zero again when an instance is dropped.
//!
//! Owns the regions (one anonymous private mapping per memory in use or kept
//! idle) and their reset. Does not own what a memory holds during a call, nor
//! its initial contents: wasmi still creates a fresh `Store`, instance,
//! globals and tables for every call and copies the data segments into the
//! memory, exactly as with a freshly allocated one.
//!
//! Why the reset is exact: a page of an anonymous private mapping that is
//! neither present nor swapped out reads as zero. When a memory is given
//! back, `/proc/self/pagemap` says which of its pages are present or swapped;
//! those are zeroed, the others are zero already. The zeroed pages stay
//! resident, so the next call neither faults them in (about 1.5 µs a fault in
//! the VM of docs/performance.md) nor zero-fills the pages it never touches:
//! a stock Rust build's 17 initial pages (1.06 MiB, mostly an unused shadow
//! stack) cost what the few pages its calls touch cost, instead of a 1 MiB
//! `memset` per call.
//!
//! Installed only where it is checked to work ([`install`]): Linux, with
//! `/proc/self/pagemap` readable and answering a self-check (under
//! qemu-user it describes the emulator's own address space, and fails it).
//! Each region reserves address space (not memory) for the largest memory a
//! call may have; on 32-bit targets at most 8 MiB, so that the regions fit
//! a 32-bit address space, and a memory that grows beyond its region moves
//! into a `Vec` (see the patch).
//! Elsewhere, or with `WASM_ENGINE_MEMORY_POOL=off`, wasmi allocates and
//! zero-fills a `Vec` per memory as released.

/// Installs the pool for every linear memory created from now on, each
/// region reserving `reserve_bytes` of address space (memories that grow
/// beyond it move into a `Vec`, see the patch). Returns whether the pool is
/// in use; the first call decides for the whole process.
pub(super) fn install(reserve_bytes: u64) -> bool {
    imp::install(reserve_bytes)
}

#[cfg(target_os = "linux")]
mod imp {
    use std::fs::File;
    use std::os::unix::fs::FileExt;
    use std::ptr::NonNull;
    use std::sync::{Mutex, OnceLock, PoisonError};

    use wasmi_core::LinearMemoryAllocator;

    /// Most idle regions kept; a region given back beyond this is unmapped.
    /// An idle region costs only the pages calls touched (see below).
    const MAX_IDLE_REGIONS: usize = 16;
    /// A region whose calls touched more than this many bytes is emptied
    /// with `madvise(MADV_DONTNEED)` instead of zeroed, so that an idle
    /// region never holds more than this much resident memory (16 regions:
    /// 32 MiB at most, typically a few pages each).
    const MAX_RESIDENT_BYTES: usize = 2 << 20;
    /// Page map entries read at once (on the stack: 4 KiB).
    const PAGES_PER_READ: usize = 512;
    /// The largest region: wasm32's whole 4 GiB where address space is
    /// plenty. A 32-bit process has 3 GiB of it in all, shared with the
    /// heap and the threads' stacks: 8 MiB a region covers a stock Rust or
    /// wasi-libc build (17 initial pages) and its growth; the idle regions
    /// then take 128 MiB of address space, plus 8 MiB an instance alive.
    #[cfg(target_pointer_width = "64")]
    const MAX_REGION_BYTES: usize = 1 << 32;
    #[cfg(not(target_pointer_width = "64"))]
    const MAX_REGION_BYTES: usize = 8 << 20;
    /// `/proc/self/pagemap`: the page is present in memory.
    const PAGE_PRESENT: u64 = 1 << 63;
    /// `/proc/self/pagemap`: the page is swapped out (its contents live on).
    const PAGE_SWAPPED: u64 = 1 << 62;

    struct Pool {
        pagemap: File,
        page_bytes: usize,
        region_bytes: usize,
        /// Base addresses of idle regions, every byte of which is zero.
        idle: Mutex<Vec<usize>>,
    }

    static POOL: OnceLock<Option<Pool>> = OnceLock::new();

    static ALLOCATOR: LinearMemoryAllocator = LinearMemoryAllocator {
        allocate,
        deallocate,
    };

    pub(super) fn install(reserve_bytes: u64) -> bool {
        let pool = POOL.get_or_init(|| {
            if std::env::var_os("WASM_ENGINE_MEMORY_POOL").is_some_and(|value| value == "off") {
                log::debug!("linear memory pool off (WASM_ENGINE_MEMORY_POOL=off)");
                return None;
            }
            let pool = Pool::open(reserve_bytes);
            match &pool {
                Ok(_) => wasmi_core::set_linear_memory_allocator(&ALLOCATOR),
                Err(reason) => log::debug!("linear memory pool not used: {reason}"),
            }
            pool.ok()
        });
        pool.is_some()
    }

    fn pool() -> Option<&'static Pool> {
        POOL.get().and_then(Option::as_ref)
    }

    fn allocate(size: usize) -> Option<(NonNull<u8>, usize)> {
        let pool = pool()?;
        if size > pool.region_bytes {
            return None;
        }
        let reused = pool
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let base = match reused {
            Some(base) => base,
            None => pool.map_region()?,
        };
        Some((NonNull::new(base as *mut u8)?, pool.region_bytes))
    }

    /// # Safety
    /// `ptr` and `capacity` are a region `allocate` returned, not used again.
    unsafe fn deallocate(ptr: NonNull<u8>, len: usize, capacity: usize) {
        let base = ptr.as_ptr() as usize;
        let Some(pool) = pool() else {
            unmap(base, capacity);
            return;
        };
        if !pool.reset(base, len) {
            unmap(base, capacity);
            return;
        }
        let mut idle = pool.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < MAX_IDLE_REGIONS {
            idle.push(base);
        } else {
            drop(idle);
            unmap(base, capacity);
        }
    }

    fn unmap(base: usize, bytes: usize) {
        // Safety: the region was mapped by `map_region` with this length and
        // nothing refers to it any more.
        unsafe {
            libc::munmap(base as *mut libc::c_void, bytes);
        }
    }

    impl Pool {
        /// The pool, after checking that the page map says what it must.
        fn open(reserve_bytes: u64) -> Result<Pool, String> {
            // Safety: sysconf has no preconditions.
            let page_bytes = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
            let page_bytes = usize::try_from(page_bytes)
                .ok()
                .filter(|bytes| bytes.is_power_of_two())
                .ok_or("no page size")?;
            let region_bytes = usize::try_from(reserve_bytes)
                .unwrap_or(usize::MAX)
                .clamp(page_bytes, MAX_REGION_BYTES)
                .next_multiple_of(page_bytes);
            let pagemap = File::open("/proc/self/pagemap")
                .map_err(|error| format!("/proc/self/pagemap: {error}"))?;
            let pool = Pool {
                pagemap,
                page_bytes,
                region_bytes,
                idle: Mutex::new(Vec::new()),
            };
            pool.self_check()?;
            Ok(pool)
        }

        /// Touches two pages of a fresh mapping and requires the page map to
        /// report exactly those two as present, and a reset to make them zero.
        fn self_check(&self) -> Result<(), String> {
            let probe = Pool {
                region_bytes: 8 * self.page_bytes,
                pagemap: self
                    .pagemap
                    .try_clone()
                    .map_err(|error| format!("/proc/self/pagemap: {error}"))?,
                page_bytes: self.page_bytes,
                idle: Mutex::new(Vec::new()),
            };
            let base = probe.map_region().ok_or("mmap failed")?;
            let touched = [2, 5];
            for page in touched {
                // Safety: inside the fresh mapping of 8 pages.
                unsafe { *((base + page * self.page_bytes + 7) as *mut u8) = 1 };
            }
            let mut flags = [0_u64; 8];
            let outcome = match probe.page_flags(base, &mut flags) {
                Ok(()) => {
                    let present: Vec<usize> = (0..8)
                        .filter(|&page| flags[page] & (PAGE_PRESENT | PAGE_SWAPPED) != 0)
                        .collect();
                    if present != touched {
                        Err(format!(
                            "/proc/self/pagemap reports pages {present:?} present, expected {touched:?}"
                        ))
                    } else if !probe.reset(base, probe.region_bytes) {
                        Err("the reset failed".to_owned())
                    } else {
                        // Safety: the mapping is 8 pages, readable.
                        let bytes = unsafe {
                            std::slice::from_raw_parts(base as *const u8, probe.region_bytes)
                        };
                        if bytes.iter().all(|&byte| byte == 0) {
                            Ok(())
                        } else {
                            Err("the reset left bytes behind".to_owned())
                        }
                    }
                }
                Err(error) => Err(format!("/proc/self/pagemap: {error}")),
            };
            unmap(base, probe.region_bytes);
            outcome
        }

        /// A fresh region of `region_bytes`, all zero, not yet resident.
        fn map_region(&self) -> Option<usize> {
            // Safety: a new private anonymous mapping aliases nothing.
            let base = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    self.region_bytes,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                    -1,
                    0,
                )
            };
            if base == libc::MAP_FAILED {
                return None;
            }
            // Small pages keep the reset to the pages a call touched (a huge
            // page would make 2 MiB present at once). Advice only: the reset
            // is exact either way.
            // Safety: advice on our own mapping.
            unsafe {
                libc::madvise(base, self.region_bytes, libc::MADV_NOHUGEPAGE);
            }
            Some(base as usize)
        }

        /// Reads the page map entries of the pages from `base` into
        /// `flags`, one per page.
        fn page_flags(&self, base: usize, flags: &mut [u64]) -> std::io::Result<()> {
            let mut raw = [0_u8; 8 * PAGES_PER_READ];
            let offset = (base / self.page_bytes) as u64 * 8;
            let raw = &mut raw[..8 * flags.len().min(PAGES_PER_READ)];
            self.pagemap.read_exact_at(raw, offset)?;
            for (flag, entry) in flags.iter_mut().zip(raw.chunks_exact(8)) {
                *flag = u64::from_ne_bytes(entry.try_into().expect("8 bytes"));
            }
            Ok(())
        }

        /// Makes the first `len` bytes of the region at `base` zero again
        /// (Wasmi never wrote beyond `len`); `false` if it could not. No
        /// heap allocation: musl's allocator maps and unmaps for a few KiB.
        fn reset(&self, base: usize, len: usize) -> bool {
            let pages = len.div_ceil(self.page_bytes);
            let mut dirty_pages = 0;
            let mut flags = [0_u64; PAGES_PER_READ];
            let mut chunk_start = 0;
            while chunk_start < pages {
                let chunk = &mut flags[..(pages - chunk_start).min(PAGES_PER_READ)];
                let chunk_base = base + chunk_start * self.page_bytes;
                if self.page_flags(chunk_base, chunk).is_err() {
                    return self.discard(base, pages);
                }
                let dirty = |page: usize| chunk[page] & (PAGE_PRESENT | PAGE_SWAPPED) != 0;
                let mut page = 0;
                while page < chunk.len() {
                    if !dirty(page) {
                        page += 1;
                        continue;
                    }
                    let run_start = page;
                    while page < chunk.len() && dirty(page) {
                        page += 1;
                    }
                    dirty_pages += page - run_start;
                    if dirty_pages * self.page_bytes > MAX_RESIDENT_BYTES {
                        return self.discard(base, pages);
                    }
                    // Safety: inside the region, which no instance uses any more.
                    unsafe {
                        std::ptr::write_bytes(
                            (chunk_base + run_start * self.page_bytes) as *mut u8,
                            0,
                            (page - run_start) * self.page_bytes,
                        );
                    }
                }
                chunk_start += chunk.len();
            }
            true
        }

        /// Gives the first `pages` pages back to the kernel: zero on next touch.
        fn discard(&self, base: usize, pages: usize) -> bool {
            // Safety: advice on our own mapping, which no instance uses any more.
            let outcome = unsafe {
                libc::madvise(
                    base as *mut libc::c_void,
                    pages * self.page_bytes,
                    libc::MADV_DONTNEED,
                )
            };
            outcome == 0
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn a_region_given_back_dirty_is_handed_out_all_zero() {
            // The pool of this test process, whatever its reservation.
            if !install(64 << 20) {
                eprintln!("linear memory pool unavailable here; nothing to check");
                return;
            }
            let pool = pool().expect("installed");
            let (ptr, capacity) = allocate(17 << 16).expect("a region");
            assert_eq!(capacity, pool.region_bytes);
            let base = ptr.as_ptr();
            // Writes spread over the memory, and one past the initial size
            // that a grown memory could have made.
            let written = [0, 4_095, 4_096, 700_000, (17 << 16) - 1, (18 << 16) - 1];
            for offset in written {
                // Safety: inside the region.
                unsafe { *base.add(offset) = 0xa5 };
            }
            // Safety: from `allocate`, not used again.
            unsafe { deallocate(ptr, 18 << 16, capacity) };
            // Another thread may take it first; look at every idle region.
            let idle = pool.idle.lock().unwrap_or_else(PoisonError::into_inner);
            for &region in idle.iter() {
                // Safety: idle regions are mapped and nobody writes them.
                let bytes = unsafe { std::slice::from_raw_parts(region as *const u8, 18 << 16) };
                assert!(
                    bytes.iter().all(|&byte| byte == 0),
                    "an idle region holds non-zero bytes"
                );
            }
        }

        #[test]
        fn memories_larger_than_a_region_are_left_to_wasmi() {
            if !install(64 << 20) {
                return;
            }
            let pool = pool().expect("installed");
            assert!(allocate(pool.region_bytes + 1).is_none());
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    pub(super) fn install(_reserve_bytes: u64) -> bool {
        false
    }
}
