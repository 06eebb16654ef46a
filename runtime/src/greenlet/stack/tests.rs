use super::guard::{count_mappings, map_count_message, read_max_map_count};
use super::*;
use crate::greenlet::stack::overflow::{self, RunningInfo};
use std::ptr;

use std::hint::black_box;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Output};
use std::time::Instant;

use corosensei::{Coroutine, CoroutineResult, Yielder};

/// Env var that tells an `#[ignore]`d child test what to do.
const CHILD_ENV: &str = "GREEN_STACK_TEST_CHILD";

/// Re-runs this test binary with only the ignored test `name` (of this module), with
/// `CHILD_ENV=mode`.
fn run_child(name: &str, mode: &str) -> Output {
    let exe = std::env::current_exe().expect("current_exe");
    // The test's path inside the crate: this module's path without the crate's name.
    let module = module_path!().split_once("::").map_or("", |(_, m)| m);
    Command::new(exe)
        .args([
            "--exact",
            &format!("{module}::{name}"),
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, mode)
        .output()
        .expect("spawn child test process")
}

fn child_mode() -> Option<String> {
    let mode = std::env::var(CHILD_ENV).ok()?;
    // No core dumps from the crashes we provoke on purpose.
    let no_core = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: setrlimit only reads the struct.
    unsafe { libc::setrlimit(libc::RLIMIT_CORE, &no_core) };
    Some(mode)
}

fn describe(out: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn consecutive_stacks_start_at_different_cache_colors_within_their_top_page() {
    let mut pool = StackPool::new();
    let stacks: Vec<GreenStack> = (0..8)
        .map(|_| pool.get(DEFAULT_STACK_SIZE).unwrap())
        .collect();
    let mut colors = std::collections::BTreeSet::new();
    for s in &stacks {
        let top = s.base;
        let start = corosensei::stack::Stack::base(s).get();
        assert!(start <= top && top - start <= 1536, "shift {}", top - start);
        assert_eq!(start % STACK_ALIGNMENT, 0);
        assert_eq!(
            s.size(),
            DEFAULT_STACK_SIZE,
            "the color does not change the size class"
        );
        colors.insert(top - start);
    }
    assert_eq!(colors.len(), 4, "{colors:?}");
    for s in stacks {
        pool.put(s);
    }
}

#[test]
fn get_put_reuses_the_same_slot_without_mapping() {
    let mut pool = StackPool::new();
    let a = pool.get(DEFAULT_STACK_SIZE).unwrap();
    let (base, lo) = (a.base(), a.limit());
    let before = pool.stats();
    assert_eq!(
        (
            before.allocated,
            before.in_use,
            before.pooled,
            before.chunks
        ),
        (1, 1, 0, 1)
    );
    pool.put(a);
    assert_eq!(pool.stats().pooled, 1);
    assert_eq!(pool.stats().in_use, 0);
    let b = pool.get(DEFAULT_STACK_SIZE).unwrap();
    assert_eq!(b.base(), base);
    assert_eq!(b.limit(), lo);
    let after = pool.stats();
    assert_eq!((after.allocated, after.in_use, after.pooled), (1, 1, 0));
    assert_eq!(
        (after.chunks, after.mapped_bytes),
        (before.chunks, before.mapped_bytes)
    );
    // A size that rounds to the same page count shares the class.
    pool.put(b);
    let c = pool.get(DEFAULT_STACK_SIZE - 100).unwrap();
    assert_eq!(c.base(), base);
    pool.put(c);
}

#[test]
fn chunks_hold_many_stacks() {
    let mut pool = StackPool::new();
    let stacks: Vec<_> = (0..FIRST_CHUNK_SLOTS)
        .map(|_| pool.get(DEFAULT_STACK_SIZE).unwrap())
        .collect();
    assert_eq!(pool.stats().chunks, 1);
    let more = pool.get(DEFAULT_STACK_SIZE).unwrap();
    assert_eq!(pool.stats().chunks, 2);
    let slot = DEFAULT_STACK_SIZE + page_size();
    assert_eq!(
        pool.stats().mapped_bytes,
        3 * FIRST_CHUNK_SLOTS * slot,
        "second chunk doubles"
    );
    // Slots are disjoint, guard directly below usable range, consecutive in a chunk.
    let mut ranges: Vec<(usize, usize)> = stacks
        .iter()
        // (The slot's top, not the colored start corosensei gets from `base()`.)
        .map(|s| (s.limit().get(), s.base))
        .collect();
    ranges.sort();
    for w in ranges.windows(2) {
        assert_eq!(
            w[0].1, w[1].0,
            "slots of a chunk are adjacent, guard between them"
        );
    }
    for s in stacks {
        pool.put(s);
    }
    pool.put(more);
    assert_eq!(pool.stats().pooled, FIRST_CHUNK_SLOTS + 1);
}

#[test]
fn every_usable_byte_is_writable_and_aligned() {
    let page = page_size();
    let mut pool = StackPool::new();
    for (request, expect) in [
        (DEFAULT_STACK_SIZE, DEFAULT_STACK_SIZE),
        (10_000, 10_000usize.div_ceil(page) * page),
        (0, MIN_STACK_SIZE.div_ceil(page) * page),
        (1 << 20, 1 << 20),
    ] {
        let stack = pool.get(request).unwrap();
        assert_eq!(stack.size(), expect, "request {request}");
        let (lo, hi) = stack.guard_range();
        assert_eq!(hi - lo, page);
        assert_eq!(stack.limit().get(), lo, "limit includes the guard page");
        assert_eq!(stack.base - hi, expect);
        assert_eq!(stack.base().get(), stack.base - stack.color());
        assert_eq!(stack.base().get() % STACK_ALIGNMENT, 0);
        assert_eq!(stack.limit().get() % STACK_ALIGNMENT, 0);
        assert_eq!(stack.base % page, 0);
        // SAFETY: [hi, base) is the stack's usable range, owned by `stack`.
        let usable = unsafe { std::slice::from_raw_parts_mut(hi as *mut u8, stack.size()) };
        for (i, b) in usable.iter_mut().enumerate() {
            *b = i as u8;
        }
        assert!(usable.iter().enumerate().all(|(i, &b)| b == i as u8));
        pool.put(stack);
    }
    assert_eq!(pool.stats().in_use, 0);
}

#[test]
fn absurd_sizes_are_errors_not_panics() {
    let mut pool = StackPool::new();
    for size in [usize::MAX, usize::MAX / 2, isize::MAX as usize] {
        let err = pool.get(size).unwrap_err();
        assert!(err.to_string().contains("too large"), "{err}");
        let io: io::Error = err.into();
        assert_eq!(io.kind(), io::ErrorKind::OutOfMemory);
    }
    // Large but mappable thanks to MAP_NORESERVE: 1 TiB is normally fine on 64-bit;
    // if not, it must be a clean error.
    match pool.get(1 << 40) {
        Ok(s) => {
            assert_eq!(s.size(), 1 << 40);
            assert_eq!(
                pool.stats().chunks,
                1,
                "a huge stack gets a chunk of its own"
            );
            pool.put(s);
        }
        Err(e) => assert!(e.to_string().contains("cannot allocate"), "{e}"),
    }
}

#[test]
fn high_water_mark_releases_pages_but_keeps_slots() {
    let mut pool = StackPool::with_options(GuardKind::detect(), 2, WARM_BYTES_LIMIT);
    let stacks: Vec<_> = (0..5)
        .map(|_| pool.get(DEFAULT_STACK_SIZE).unwrap())
        .collect();
    let addrs: Vec<usize> = stacks.iter().map(|s| s.guard_range().1).collect();
    for s in &stacks {
        // SAFETY: the lowest usable byte of a stack we own.
        unsafe { *(s.guard_range().1 as *mut u8) = 0xAB };
    }
    for s in stacks {
        pool.put(s);
    }
    let stats = pool.stats();
    assert_eq!((stats.pooled, stats.released, stats.allocated), (5, 3, 5));
    // Warm stacks come back first (most recent first) with their contents; released ones
    // read as zero. No new slot is carved.
    let mut got = Vec::new();
    for i in 0..5 {
        let s = pool.get(DEFAULT_STACK_SIZE).unwrap();
        let low = s.guard_range().1;
        // SAFETY: the lowest usable byte of a stack we own.
        let byte = unsafe { *(low as *const u8) };
        assert_eq!(byte, if i < 2 { 0xAB } else { 0 }, "stack {i}");
        assert!(addrs.contains(&low));
        got.push(s);
    }
    assert_eq!(pool.stats().allocated, 5);
    assert_eq!(pool.stats().released, 0);
    for s in got {
        pool.put(s);
    }
}

/// Takes `n` stacks, writes to each, returns them (in address order or the reverse) to
/// a pool that keeps none warm, and takes them all again: returns (madvise calls made,
/// stacks that came back with their byte still set).
fn release_run(guard: GuardKind, n: usize, ascending: bool) -> (usize, usize) {
    let mut pool = StackPool::with_options(guard, 0, WARM_BYTES_LIMIT);
    let mut stacks: Vec<_> = (0..n)
        .map(|_| pool.get(DEFAULT_STACK_SIZE).unwrap())
        .collect();
    for s in &stacks {
        // SAFETY: the lowest usable byte of a stack we own.
        unsafe { *(s.guard_range().1 as *mut u8) = 0xAB };
    }
    stacks.sort_by_key(|s| s.guard_range().0);
    if !ascending {
        stacks.reverse();
    }
    for s in stacks {
        pool.put(s);
    }
    assert_eq!(pool.stats().released, n);
    let again: Vec<_> = (0..n)
        .map(|_| pool.get(DEFAULT_STACK_SIZE).unwrap())
        .collect();
    assert_eq!(pool.stats().released, 0);
    assert_eq!(pool.stats().allocated, n, "no new slot carved");
    let kept = again
        .iter()
        // SAFETY: the lowest usable byte of a stack we own.
        .filter(|s| unsafe { *(s.guard_range().1 as *const u8) } != 0)
        .count();
    let calls = pool.release_calls();
    for s in again {
        pool.put(s);
    }
    (calls, kept)
}

#[test]
fn adjacent_stacks_are_released_in_runs() {
    // 100 stacks returned in address order, carved from a first chunk of 64 slots and a
    // second one: a run per chunk (a run stays in one chunk and holds at most 64), two
    // madvise calls, and every page released before a stack is handed out again.
    assert_eq!(FIRST_CHUNK_SLOTS, RELEASE_RUN);
    if GuardKind::detect() == GuardKind::MadviseGuard {
        assert_eq!(release_run(GuardKind::MadviseGuard, 100, true), (2, 0));
        assert_eq!(release_run(GuardKind::MadviseGuard, 40, true), (1, 0));
    }
    // In the other order no stack extends the run before it: one call each.
    assert_eq!(release_run(GuardKind::detect(), 10, false), (10, 0));
    // With mprotect guards (a mapping per guard page) every stack is released alone.
    assert_eq!(release_run(GuardKind::Mprotect, 10, true), (10, 0));
}

#[test]
fn warm_bytes_limit_applies() {
    let mut pool = StackPool::with_options(GuardKind::detect(), usize::MAX, 2 * DEFAULT_STACK_SIZE);
    let stacks: Vec<_> = (0..4)
        .map(|_| pool.get(DEFAULT_STACK_SIZE).unwrap())
        .collect();
    for s in stacks {
        pool.put(s);
    }
    assert_eq!(pool.stats().released, 2);
}

#[test]
fn coroutine_runs_on_green_stack_and_returns_it() {
    let mut pool = StackPool::new();
    let stack = pool.get(DEFAULT_STACK_SIZE).unwrap();
    let (lo, base) = (stack.limit().get(), stack.base().get());
    let mut co = Coroutine::with_stack(stack, |y: &Yielder<u32, usize>, _first: u32| {
        let local = 0u8;
        let sp = &local as *const u8 as usize;
        let x = y.suspend(sp);
        x * 2
    });
    match co.resume(1) {
        CoroutineResult::Yield(sp) => assert!(
            sp > lo && sp < base,
            "frame {sp:#x} not in [{lo:#x}, {base:#x})"
        ),
        CoroutineResult::Return(_) => panic!("returned early"),
    }
    assert!(matches!(co.resume(21), CoroutineResult::Return(42)));
    pool.put(co.into_stack());
    assert_eq!(pool.stats().pooled, 1);
}

#[test]
fn map_count_message_names_the_sysctl() {
    let msg = map_count_message(Some(65530));
    assert!(msg.contains("vm.max_map_count=65530"), "{msg}");
    assert!(msg.contains("sysctl -w vm.max_map_count=262144"), "{msg}");
    assert!(map_count_message(None).contains("vm.max_map_count=unknown"));
    let err = StackError::map_count(libc::ENOMEM);
    assert!(err.is_map_count_limit());
    assert_eq!(err.raw_os_error(), Some(libc::ENOMEM));
    assert!(err.to_string().contains("vm.max_map_count="), "{err}");
    let io: io::Error = err.into();
    assert_eq!(io.kind(), io::ErrorKind::OutOfMemory);
    assert!(io.to_string().contains("sysctl -w vm.max_map_count"));
}

#[test]
fn madvise_guard_keeps_mappings_few() {
    if GuardKind::detect() != GuardKind::MadviseGuard {
        eprintln!("MADV_GUARD_INSTALL unsupported on this kernel; skipping");
        return;
    }
    const N: usize = 50_000;
    let mut pool = StackPool::new();
    let before = count_mappings().unwrap();
    let start = Instant::now();
    let stacks: Vec<_> = (0..N)
        .map(|_| pool.get(DEFAULT_STACK_SIZE).unwrap())
        .collect();
    let elapsed = start.elapsed();
    let after = count_mappings().unwrap();
    let grown = after as isize - before as isize;
    eprintln!(
        "{N} stacks: /proc/self/maps {before} -> {after} ({grown:+}), {} chunks, {:?} per fresh get",
        pool.stats().chunks,
        elapsed / N as u32
    );
    assert!(grown < 200, "{N} stacks added {grown} mappings");
    assert!(pool.stats().chunks < 40);
    for s in stacks {
        pool.put(s);
    }
    drop(pool);
    let freed = count_mappings().unwrap();
    assert!(
        freed <= before + 50,
        "dropping the pool unmaps its chunks ({before} -> {freed})"
    );
}

#[test]
fn mprotect_guard_exhausts_map_count_cleanly() {
    let out = run_child("mprotect_exhaustion_child", "run");
    assert!(out.status.success(), "{}", describe(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("CHILD-OK"), "{}", describe(&out));
    assert!(stdout.contains("vm.max_map_count="), "{}", describe(&out));
}

#[test]
#[ignore = "child process of mprotect_guard_exhausts_map_count_cleanly"]
fn mprotect_exhaustion_child() {
    if child_mode().is_none() {
        return;
    }
    let max = read_max_map_count().unwrap_or(65530) as usize;
    let mut pool = StackPool::with_options(GuardKind::Mprotect, WARM_LIMIT, WARM_BYTES_LIMIT);
    let mut stacks = Vec::with_capacity(max);
    let err = loop {
        match pool.get(DEFAULT_STACK_SIZE) {
            Ok(s) => stacks.push(s),
            Err(e) => break e,
        }
        assert!(
            stacks.len() <= max,
            "{} stacks without hitting vm.max_map_count={max}",
            stacks.len()
        );
    };
    let n = stacks.len();
    // Two mappings per stack: the limit is hit at about max / 2 stacks.
    assert!(
        n > max / 2 - 2000 && n <= max / 2 + 10,
        "{n} stacks for max_map_count {max}"
    );
    assert!(err.is_map_count_limit(), "{err}");
    // The pool still works at the limit: reuse needs no mapping.
    let s = stacks.pop().unwrap();
    let base = s.base();
    pool.put(s);
    let s = pool.get(DEFAULT_STACK_SIZE).unwrap();
    assert_eq!(s.base(), base);
    stacks.push(s);
    for s in stacks {
        pool.put(s);
    }
    drop(pool);
    println!("CHILD-OK {n} stacks; error: {err}");
}

/// Recurses until the stack overflows.
fn recurse(depth: u64) -> u64 {
    let frame = black_box([depth as u8; 512]);
    if black_box(depth) == u64::MAX {
        return 0;
    }
    recurse(depth + 1) + frame[black_box(7)] as u64
}

fn assert_overflow_reported(mode: &str) {
    let out = run_child("overflow_child", mode);
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGABRT),
        "{}",
        describe(&out)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let size = if mode == "small" {
        16384
    } else {
        DEFAULT_STACK_SIZE
    };
    let expect = format!(
        "green: greenlet #42 \"worker\" overflowed its stack ({size} bytes); \
         give it a larger stack with green::Builder::stack_size\n"
    );
    assert!(stderr.contains(&expect), "{}", describe(&out));
}

#[test]
fn overflow_is_reported_with_madvise_guard() {
    if GuardKind::detect() != GuardKind::MadviseGuard {
        eprintln!("MADV_GUARD_INSTALL unsupported on this kernel; skipping");
        return;
    }
    assert_overflow_reported("detect");
}

#[test]
fn overflow_is_reported_with_mprotect_guard() {
    assert_overflow_reported("mprotect");
}

#[test]
fn overflow_is_reported_after_pages_were_released() {
    assert_overflow_reported("released");
}

#[test]
fn overflow_is_reported_after_a_batched_release() {
    // Three adjacent stacks released as one run: one madvise over the guard page of the
    // middle one too, whose overflow must still be caught.
    assert_overflow_reported("released-run");
}

#[test]
fn overflow_is_reported_after_dontneed_over_the_guard() {
    // MADV_DONTNEED over the guard page too: guard markers (and PROT_NONE) survive it.
    assert_overflow_reported("dontneed-guard");
}

#[test]
fn overflow_is_reported_for_small_stacks() {
    assert_overflow_reported("small");
}

#[test]
fn other_faults_chain_to_the_previous_handler() {
    let out = run_child("overflow_child", "other-fault");
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGSEGV),
        "{}",
        describe(&out)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("overflowed its stack"),
        "{}",
        describe(&out)
    );
    assert!(stderr.contains("CHILD-FAULTING"), "{}", describe(&out));
}

#[test]
fn overflow_of_the_thread_stack_is_still_reported_by_std() {
    let out = run_child("overflow_child", "thread-overflow");
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGABRT),
        "{}",
        describe(&out)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("green: greenlet"), "{}", describe(&out));
    assert!(
        stderr.contains("has overflowed its stack"),
        "{}",
        describe(&out)
    );
}

#[test]
#[ignore = "child process of the overflow_* tests"]
fn overflow_child() {
    let Some(mode) = child_mode() else { return };
    overflow::install();
    let _altstack = overflow::ensure_altstack();
    let (guard, warm) = match mode.as_str() {
        "mprotect" => (GuardKind::Mprotect, WARM_LIMIT),
        "released" | "released-run" => (GuardKind::detect(), 0),
        _ => (GuardKind::detect(), WARM_LIMIT),
    };
    let mut pool = StackPool::with_options(guard, warm, WARM_BYTES_LIMIT);
    let size = if mode == "small" {
        16384
    } else {
        DEFAULT_STACK_SIZE
    };
    let mut stack = pool.get(size).unwrap();
    if mode == "released" {
        // Touch it, return it (pages released: warm limit 0), take it again.
        // SAFETY: the lowest usable byte of a stack we own.
        unsafe { *(stack.guard_range().1 as *mut u8) = 1 };
        pool.put(stack);
        assert_eq!(pool.stats().released, 1);
        stack = pool.get(size).unwrap();
    }
    if mode == "released-run" {
        // Three adjacent stacks, touched, returned in address order (one run, warm limit
        // 0); then the top one and the middle one are taken again.
        let b = pool.get(size).unwrap();
        let c = pool.get(size).unwrap();
        let middle = b.guard_range();
        for s in [&stack, &b, &c] {
            // SAFETY: the lowest usable byte of a stack we own.
            unsafe { *(s.guard_range().1 as *mut u8) = 1 };
        }
        pool.put(stack);
        pool.put(b);
        pool.put(c);
        assert_eq!(pool.stats().released, 3);
        let _top = pool.get(size).unwrap();
        stack = pool.get(size).unwrap();
        assert_eq!(stack.guard_range(), middle);
        // SAFETY: the lowest usable byte of a stack we own.
        let lowest = unsafe { *(stack.guard_range().1 as *const u8) };
        assert_eq!(lowest, 0, "released");
    }
    let (lo, hi) = stack.guard_range();
    if mode == "dontneed-guard" {
        let len = stack.base().get() - lo;
        // SAFETY: the whole slot (guard and usable range) of a stack we own and nobody
        // uses; DONTNEED only discards its contents.
        let r = unsafe { libc::madvise(lo as *mut libc::c_void, len, libc::MADV_DONTNEED) };
        assert_eq!(r, 0);
    }
    let name: &'static str = "worker";
    let info: &'static RunningInfo = Box::leak(Box::new(RunningInfo {
        guard_lo: lo,
        guard_hi: hi,
        id: 42,
        name_ptr: name.as_ptr(),
        name_len: name.len(),
        stack_size: stack.size(),
    }));
    match mode.as_str() {
        "other-fault" => {
            overflow::set_running(info);
            // A fault outside any guard page: must reach std's handler, which restores
            // SIG_DFL, so the process dies of SIGSEGV.
            // SAFETY: a fresh inaccessible mapping; reading it faults (on purpose).
            unsafe {
                let p = libc::mmap(
                    ptr::null_mut(),
                    page_size(),
                    libc::PROT_NONE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                );
                assert_ne!(p, libc::MAP_FAILED);
                eprintln!("CHILD-FAULTING");
                std::ptr::read_volatile(p as *const u8);
            }
            unreachable!("read of a PROT_NONE page succeeded");
        }
        "thread-overflow" => {
            // Overflow the thread's own stack while no greenlet runs.
            overflow::set_running(ptr::null());
            let r = std::thread::Builder::new()
                .stack_size(64 * 1024)
                .spawn(|| recurse(0))
                .unwrap()
                .join();
            unreachable!("thread stack did not overflow: {r:?}");
        }
        _ => {
            let mut co = Coroutine::with_stack(stack, move |_: &Yielder<(), ()>, ()| {
                overflow::set_running(info);
                recurse(0)
            });
            let r = co.resume(());
            unreachable!(
                "greenlet stack did not overflow: {:?}",
                matches!(r, CoroutineResult::Return(_))
            );
        }
    }
}

#[test]
#[ignore = "measurement; run with --ignored --nocapture (release recommended)"]
fn measure_get_put_and_rss() {
    const ROUNDS: u32 = 1_000_000;
    let mut pool = StackPool::new();
    let s = pool.get(DEFAULT_STACK_SIZE).unwrap();
    pool.put(s);
    let start = Instant::now();
    for _ in 0..ROUNDS {
        let s = pool.get(black_box(DEFAULT_STACK_SIZE)).unwrap();
        pool.put(black_box(s));
    }
    eprintln!("pooled get+put: {:?} per pair", start.elapsed() / ROUNDS);

    const N: usize = 20_000;
    let status_kb = |field: &str| -> usize {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with(field)).unwrap();
        line.split_whitespace()
            .nth(1)
            .unwrap()
            .parse::<usize>()
            .unwrap()
            * 1024
    };
    let rss = || status_kb("VmRSS:");
    let pte = || status_kb("VmPTE:");
    let mut pool = StackPool::new();
    let before = rss();
    let pte_before = pte();
    let start = Instant::now();
    let mut cos: Vec<_> = (0..N)
        .map(|i| {
            let stack = pool.get(DEFAULT_STACK_SIZE).unwrap();
            let mut co = Coroutine::with_stack(stack, move |y: &Yielder<(), ()>, ()| {
                y.suspend(());
                black_box(i)
            });
            co.resume(());
            co
        })
        .collect();
    let elapsed = start.elapsed();
    let after = rss();
    eprintln!(
        "page tables: {} bytes per idle greenlet stack",
        (pte() - pte_before) / N
    );
    eprintln!(
        "{N} idle coroutines on GreenStacks: RSS {} -> {} = {} bytes per idle greenlet stack (incl. coroutine bookkeeping); \
         fresh get + start: {:?} each; mappings {:?}; guard {:?}",
        before,
        after,
        (after - before) / N,
        elapsed / N as u32,
        count_mappings(),
        pool.stats().guard
    );
    for co in cos.iter_mut() {
        co.resume(());
    }
    for co in cos {
        pool.put(co.into_stack());
    }
    let stats = pool.stats();
    eprintln!("after put: {stats:?}; RSS {}", rss());
}
