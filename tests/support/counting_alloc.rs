//! A global allocator that counts, shared by the no-allocation tests and the memory
//! figures of the benchmarks. Include it with
//! `#[path = "../../../tests/support/counting_alloc.rs"] mod counting_alloc;` and install
//! `counting_alloc::Counting` as the `#[global_allocator]`.
//!
//! It counts two things: allocations made on the current thread while [`allocations`]
//! runs a closure, and the bytes live on the heap across all threads ([`live_bytes`]).
//! aws-lc's own `malloc` calls bypass it.

// `GlobalAlloc` is an unsafe trait; the crates forbid unsafe code, the test binaries
// that include this module only wrap the system allocator.
#![allow(unsafe_code, dead_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicIsize, Ordering};

/// The counting allocator.
pub struct Counting;

thread_local! {
    static ACTIVE: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<usize> = const { Cell::new(0) };
}

static LIVE: AtomicIsize = AtomicIsize::new(0);

fn note(grow: isize) {
    LIVE.fetch_add(grow, Ordering::Relaxed);
    let _ = ACTIVE.try_with(|active| {
        if active.get() {
            COUNT.with(|c| c.set(c.get() + 1));
        }
    });
}

fn size(n: usize) -> isize {
    isize::try_from(n).unwrap_or(isize::MAX)
}

// SAFETY: every call is forwarded unchanged to the system allocator.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(size(layout.size()));
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(size(layout.size()));
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(size(new_size) - size(layout.size()));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(size(layout.size()), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// How many allocations (including reallocations) `f` made on this thread.
pub fn allocations(f: impl FnOnce()) -> usize {
    COUNT.with(|c| c.set(0));
    ACTIVE.with(|a| a.set(true));
    f();
    ACTIVE.with(|a| a.set(false));
    COUNT.with(|c| c.get())
}

/// Bytes allocated and not yet freed, across all threads.
pub fn live_bytes() -> isize {
    LIVE.load(Ordering::Relaxed)
}
