//! A warm thread's `spawn(..).join()` allocates nothing: stacks and greenlet records are
//! pooled, and a result of one word waits in the greenlet's record.
//!
//! (Its own test binary: the counting allocator is global to the binary.)

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator; the counter is a const thread-local without
// destructor (no allocation, usable at any time).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocs() -> u64 {
    ALLOCS.with(|c| c.get())
}

#[test]
fn spawn_and_join_allocate_nothing_once_warm() {
    // Warm up: the hub, the stack pool, the ready queue, the record free list.
    for i in 0..100u64 {
        assert_eq!(green::spawn(move || i * 2).join().unwrap(), i * 2);
    }
    let before = allocs();
    for i in 0..1000u64 {
        assert_eq!(green::spawn(move || i + 1).join().unwrap(), i + 1);
    }
    assert_eq!(allocs() - before, 0, "allocations in 1000 spawn+join");
}

#[test]
fn a_spawned_greenlet_that_yields_allocates_nothing_once_warm() {
    let run = || {
        let a = green::spawn(|| {
            green::yield_now();
            1u32
        });
        let b = green::spawn(|| 2u32);
        a.join().unwrap() + b.join().unwrap()
    };
    for _ in 0..100 {
        assert_eq!(run(), 3);
    }
    let before = allocs();
    for _ in 0..1000 {
        assert_eq!(run(), 3);
    }
    assert_eq!(allocs() - before, 0, "allocations in 1000 rounds");
}
