//! Shared by the fuzz targets: the allocation limit.
//!
//! Every target runs under [`Limited`], a global allocator that aborts the process on
//! any single allocation larger than [`MAX_ALLOCATION`]: libFuzzer reports the abort as
//! a crash with its input, so "no parser allocates more than this for any input" is
//! checked on every execution. (libFuzzer's own `-malloc_limit_mb` needs a sanitizer's
//! allocator, which the stable toolchain does not have.)

use std::alloc::{GlobalAlloc, Layout, System};

/// The documented limit: 256 MiB in one allocation. Inputs are at most 4 MiB
/// (`-max_len`), so a parser asking for more has been talked into it by a length field.
pub const MAX_ALLOCATION: usize = 256 << 20;

pub struct Limited;

// SAFETY: forwards to the system allocator unchanged; only refuses (by aborting)
// requests over the limit.
unsafe impl GlobalAlloc for Limited {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        check(layout.size());
        // SAFETY: the caller upholds GlobalAlloc's contract, passed on as is
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        check(layout.size());
        // SAFETY: as above
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        check(new_size);
        // SAFETY: as above
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

fn check(size: usize) {
    if size > MAX_ALLOCATION {
        // no allocation from here on: write the message with a fixed buffer
        let msg = b"custody-fuzz: an allocation over the 256 MiB limit\n";
        let _ = std::io::Write::write_all(&mut std::io::stderr(), msg);
        std::process::abort();
    }
}

#[global_allocator]
static GLOBAL: Limited = Limited;

/// A current-thread runtime for the async entry points.
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    thread_local! {
        static RT: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap_or_else(|e| panic!("runtime: {e}"));
    }
    RT.with(|rt| rt.block_on(f))
}
