//! The futex hook (`syscall(SYS_futex, ..)`), driven with raw futex calls from
//! greenlets, plain threads and other hubs.
#![cfg(all(
    feature = "monkey",
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]

use green_net::monkey;
use green_runtime as green;
use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Tests that turn the patch off run alone.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    let g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    monkey::patch_all();
    g
}

const PRIVATE: i32 = libc::FUTEX_PRIVATE_FLAG;

/// A futex call through the hooked `syscall`: `Ok(n)` or `Err(errno)`.
fn futex(
    w: &AtomicU32,
    op: i32,
    val: u32,
    ts: Option<&libc::timespec>,
    bitset: u32,
) -> Result<i64, i32> {
    let ts = ts.map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: a futex operation on a live word; the timespec (if any) outlives the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_futex,
            w.as_ptr(),
            op,
            val,
            ts,
            std::ptr::null::<u32>(),
            bitset,
        )
    };
    if r < 0 {
        Err(std::io::Error::last_os_error().raw_os_error().unwrap())
    } else {
        Ok(r)
    }
}

fn wait(w: &AtomicU32, val: u32) -> Result<i64, i32> {
    futex(w, libc::FUTEX_WAIT | PRIVATE, val, None, 0)
}

fn wake(w: &AtomicU32, n: u32) -> Result<i64, i32> {
    futex(w, libc::FUTEX_WAKE | PRIVATE, n, None, 0)
}

fn rel(d: Duration) -> libc::timespec {
    libc::timespec {
        tv_sec: d.as_secs() as _,
        tv_nsec: d.subsec_nanos() as _,
    }
}

fn abs(clock: libc::clockid_t, d: Duration) -> libc::timespec {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a writable timespec.
    unsafe { libc::clock_gettime(clock, &mut now) };
    let t = Duration::new(now.tv_sec as u64, now.tv_nsec as u32) + d;
    rel(t)
}

/// A greenlet that counts ticks of 5 ms until told to stop: proof that the hub ran.
fn ticker() -> (Rc<Cell<bool>>, green::JoinHandle<u32>) {
    let stop = Rc::new(Cell::new(false));
    let s = stop.clone();
    let h = green::spawn(move || {
        let mut n = 0;
        while !s.get() {
            green::sleep(Duration::from_millis(5));
            n += 1;
        }
        n
    });
    (stop, h)
}

#[test]
fn a_wait_parks_the_greenlet_until_another_greenlet_wakes_it() {
    let _g = serial();
    let w = Arc::new(AtomicU32::new(0));
    let w2 = w.clone();
    let (stop, tick) = ticker();
    let waiter = green::spawn(move || wait(&w2, 0));
    green::sleep(Duration::from_millis(60));
    w.store(1, Ordering::Release);
    assert_eq!(wake(&w, 1), Ok(1));
    assert_eq!(waiter.join().unwrap(), Ok(0));
    stop.set(true);
    assert!(
        tick.join().unwrap() >= 3,
        "the hub ran while the greenlet waited"
    );
    // Nobody waits any more: the wake reaches the kernel, which finds nobody.
    assert_eq!(wake(&w, 1), Ok(0));
}

#[test]
fn a_wait_on_a_changed_word_fails_at_once_with_eagain() {
    let _g = serial();
    let w = AtomicU32::new(5);
    let r = green::spawn(move || wait(&w, 4)).join().unwrap();
    assert_eq!(r, Err(libc::EAGAIN));
}

#[test]
fn wakes_honour_the_count_oldest_first() {
    let _g = serial();
    let w = Arc::new(AtomicU32::new(0));
    let order = Rc::new(std::cell::RefCell::new(Vec::new()));
    let hs: Vec<_> = (0..4)
        .map(|i| {
            let (w, order) = (w.clone(), order.clone());
            green::spawn(move || {
                let r = wait(&w, 0);
                order.borrow_mut().push(i);
                r
            })
        })
        .collect();
    green::sleep(Duration::from_millis(20)); // all four wait
    assert_eq!(wake(&w, 2), Ok(2));
    green::sleep(Duration::from_millis(20));
    assert_eq!(*order.borrow(), vec![0, 1]);
    // A count of zero wakes one, as the kernel's does.
    assert_eq!(wake(&w, 0), Ok(1));
    assert_eq!(wake(&w, i32::MAX as u32), Ok(1));
    for h in hs {
        assert_eq!(h.join().unwrap(), Ok(0));
    }
    assert_eq!(*order.borrow(), vec![0, 1, 2, 3]);
}

#[test]
fn bitset_wakes_only_the_waiters_they_meet() {
    let _g = serial();
    let w = Arc::new(AtomicU32::new(0));
    let woken = Rc::new(Cell::new(0u32));
    let spawn = |bits: u32| {
        let (w, woken) = (w.clone(), woken.clone());
        green::spawn(move || {
            let r = futex(&w, libc::FUTEX_WAIT_BITSET | PRIVATE, 0, None, bits);
            woken.set(woken.get() | bits);
            r
        })
    };
    let (a, b) = (spawn(0b01), spawn(0b10));
    green::sleep(Duration::from_millis(20));
    let wake_bits = |bits| futex(&w, libc::FUTEX_WAKE_BITSET | PRIVATE, 10, None, bits);
    assert_eq!(wake_bits(0b10), Ok(1));
    green::sleep(Duration::from_millis(20));
    assert_eq!(woken.get(), 0b10, "only the second waiter matched");
    // A zero bitset is the kernel's EINVAL, for waits and wakes.
    assert_eq!(wake_bits(0), Err(libc::EINVAL));
    let zero = futex(&w, libc::FUTEX_WAIT_BITSET | PRIVATE, 0, None, 0);
    assert_eq!(zero, Err(libc::EINVAL));
    // A plain FUTEX_WAKE matches every bitset.
    assert_eq!(wake(&w, 10), Ok(1));
    assert_eq!(a.join().unwrap(), Ok(0));
    assert_eq!(b.join().unwrap(), Ok(0));
}

#[test]
fn timeouts_relative_absolute_and_on_either_clock() {
    let _g = serial();
    let (stop, tick) = ticker();
    let w = Arc::new(AtomicU32::new(0));
    let cases: Vec<(i32, libc::timespec)> = vec![
        (libc::FUTEX_WAIT | PRIVATE, rel(Duration::from_millis(60))),
        (
            libc::FUTEX_WAIT_BITSET | PRIVATE,
            abs(libc::CLOCK_MONOTONIC, Duration::from_millis(60)),
        ),
        (
            libc::FUTEX_WAIT_BITSET | PRIVATE | libc::FUTEX_CLOCK_REALTIME,
            abs(libc::CLOCK_REALTIME, Duration::from_millis(60)),
        ),
        // Shared (not private) futexes park too.
        (libc::FUTEX_WAIT, rel(Duration::from_millis(60))),
    ];
    let t = Instant::now();
    let hs: Vec<_> = cases
        .into_iter()
        .map(|(op, ts)| {
            let w = w.clone();
            green::spawn(move || {
                let t = Instant::now();
                (futex(&w, op, 0, Some(&ts), !0), t.elapsed())
            })
        })
        .collect();
    for h in hs {
        let (r, took) = h.join().unwrap();
        assert_eq!(r, Err(libc::ETIMEDOUT));
        assert!(took >= Duration::from_millis(50), "{took:?}");
    }
    // Concurrently: the four waits overlapped.
    assert!(
        t.elapsed() < Duration::from_millis(2000),
        "{:?}",
        t.elapsed()
    );
    stop.set(true);
    assert!(tick.join().unwrap() >= 5);
    // A time already past, a zero relative timeout, and malformed timespecs.
    let past = abs(libc::CLOCK_MONOTONIC, Duration::ZERO);
    let w2 = w.clone();
    let r = green::spawn(move || {
        let bad = libc::timespec {
            tv_sec: 0,
            tv_nsec: 1_000_000_000,
        };
        let negative = libc::timespec {
            tv_sec: -1,
            tv_nsec: 0,
        };
        [
            futex(&w2, libc::FUTEX_WAIT_BITSET | PRIVATE, 0, Some(&past), !0),
            futex(
                &w2,
                libc::FUTEX_WAIT | PRIVATE,
                0,
                Some(&rel(Duration::ZERO)),
                0,
            ),
            futex(&w2, libc::FUTEX_WAIT | PRIVATE, 0, Some(&bad), 0),
            futex(&w2, libc::FUTEX_WAIT | PRIVATE, 0, Some(&negative), 0),
        ]
    })
    .join()
    .unwrap();
    assert_eq!(
        r,
        [
            Err(libc::ETIMEDOUT),
            Err(libc::ETIMEDOUT),
            Err(libc::EINVAL),
            Err(libc::EINVAL)
        ]
    );
}

#[test]
fn wakes_from_a_plain_thread_and_from_another_hub() {
    let _g = serial();
    let (stop, tick) = ticker();
    let w = Arc::new(AtomicU32::new(0));
    let (w1, w2) = (w.clone(), w.clone());
    let a = green::spawn(move || wait(&w1, 0));
    let b = green::spawn(move || wait(&w2, 0));
    green::sleep(Duration::from_millis(20));
    // A plain thread wakes one.
    let w3 = w.clone();
    let plain = thread::spawn(move || wake(&w3, 1));
    assert_eq!(plain.join().unwrap(), Ok(1));
    // A greenlet of another thread's hub wakes the other.
    let w4 = w.clone();
    let other = thread::spawn(move || green::spawn(move || wake(&w4, 1)).join().unwrap());
    assert_eq!(other.join().unwrap(), Ok(1));
    assert_eq!(a.join().unwrap(), Ok(0));
    assert_eq!(b.join().unwrap(), Ok(0));
    stop.set(true);
    tick.join().unwrap();
}

#[test]
fn green_waiters_are_woken_before_the_kernels_and_the_rest_goes_to_the_kernel() {
    let _g = serial();
    let w = Arc::new(AtomicU32::new(0));
    // A plain thread waits in the kernel.
    let w1 = w.clone();
    let plain = thread::spawn(move || {
        loop {
            match wait(&w1, 0) {
                Ok(_) if w1.load(Ordering::Acquire) != 0 => return,
                _ if w1.load(Ordering::Acquire) != 0 => return,
                _ => {}
            }
        }
    });
    thread::sleep(Duration::from_millis(30));
    let w2 = w.clone();
    let green_waiter = green::spawn(move || wait(&w2, 0));
    green::sleep(Duration::from_millis(20));
    // One wake: the greenlet.
    assert_eq!(wake(&w, 1), Ok(1));
    assert_eq!(green_waiter.join().unwrap(), Ok(0));
    // Then the thread, through the kernel.
    w.store(1, Ordering::Release);
    let mut woken = 0;
    let t = Instant::now();
    while !plain.is_finished() {
        woken += wake(&w, 5).unwrap();
        assert!(t.elapsed() < Duration::from_secs(10));
        thread::sleep(Duration::from_millis(1));
    }
    plain.join().unwrap();
    assert!(woken >= 1);
}

#[test]
fn a_kill_makes_the_wait_fail_with_eintr_and_unwinds_at_the_next_switch() {
    let _g = serial();
    let w = Arc::new(AtomicU32::new(0));
    let steps = Rc::new(std::cell::RefCell::new(Vec::new()));
    let (w1, s1) = (w.clone(), steps.clone());
    let h = green::spawn(move || {
        let first = wait(&w1, 0);
        s1.borrow_mut().push(first);
        // The kill is deferred: a wait still parks (it does not spin, nor unwind)...
        let second = wait(&w1, 0);
        s1.borrow_mut().push(second);
        // ... and the next switch point raises it.
        green::yield_now();
        s1.borrow_mut().push(Ok(99));
    });
    green::sleep(Duration::from_millis(20));
    h.kill_nowait(); // (`kill` would wait for its end)
    green::sleep(Duration::from_millis(50));
    assert_eq!(*steps.borrow(), vec![Err(libc::EINTR)]);
    assert_eq!(wake(&w, 1), Ok(1));
    assert!(h.join().unwrap_err().is_killed());
    assert_eq!(*steps.borrow(), vec![Err(libc::EINTR), Ok(0)]);
}

#[test]
fn a_wake_that_came_with_a_kill_is_reported_as_a_wake() {
    let _g = serial();
    let w = Arc::new(AtomicU32::new(0));
    let w1 = w.clone();
    let got = Rc::new(Cell::new(None));
    let g = got.clone();
    let h = green::spawn(move || {
        g.set(Some(wait(&w1, 0)));
    });
    green::sleep(Duration::from_millis(20));
    // Both before the waiter runs again: the wake was taken, so it must not look
    // like a lost one (EINTR would make its caller wait again for nothing).
    assert_eq!(wake(&w, 1), Ok(1));
    h.kill_nowait();
    assert!(h.join().unwrap_err().is_killed());
    assert_eq!(got.get(), Some(Ok(0)));
}

#[test]
fn requeue_and_wake_op_wake_the_green_waiters() {
    let _g = serial();
    let (a, b) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
    let a1 = a.clone();
    let h = green::spawn(move || wait(&a1, 0));
    green::sleep(Duration::from_millis(20));
    // CMP_REQUEUE(a -> b, wake 0, requeue 1 if *a == 0): the green waiter of `a` cannot
    // move to the kernel's queue of `b`; it is woken (a spurious wake-up) instead.
    // SAFETY: both words are live; val2 (the requeue count) travels as the timeout.
    let r = unsafe {
        libc::syscall(
            libc::SYS_futex,
            a.as_ptr(),
            libc::FUTEX_CMP_REQUEUE | PRIVATE,
            0,
            1usize,
            b.as_ptr(),
            0u32,
        )
    };
    assert!(r >= 0);
    assert_eq!(h.join().unwrap(), Ok(0));
}

#[test]
fn waits_outside_greenlets_and_unpatched_block_the_thread() {
    let _g = serial();
    // A plain thread: the kernel's wait.
    let w = Arc::new(AtomicU32::new(0));
    let w1 = w.clone();
    let t = Instant::now();
    let r = thread::spawn(move || {
        futex(
            &w1,
            libc::FUTEX_WAIT | PRIVATE,
            0,
            Some(&rel(Duration::from_millis(30))),
            0,
        )
    })
    .join()
    .unwrap();
    assert_eq!(r, Err(libc::ETIMEDOUT));
    assert!(t.elapsed() >= Duration::from_millis(25));
    // Unpatched: a greenlet's wait blocks the thread (the ticker does not run).
    monkey::unpatch_all();
    assert!(!monkey::is_sync_patched() && !monkey::is_patched());
    let ticks = Rc::new(Cell::new(0));
    let tk = ticks.clone();
    let ticker = green::spawn(move || {
        for _ in 0..4 {
            green::sleep(Duration::from_millis(5));
            tk.set(tk.get() + 1);
        }
    });
    let w2 = w.clone();
    let waiter = green::spawn(move || {
        futex(
            &w2,
            libc::FUTEX_WAIT | PRIVATE,
            0,
            Some(&rel(Duration::from_millis(60))),
            0,
        )
    });
    green::yield_now(); // the ticker sleeps, the waiter blocks the thread
    assert_eq!(ticks.get(), 0);
    assert_eq!(waiter.join().unwrap(), Err(libc::ETIMEDOUT));
    ticker.join().unwrap();
    monkey::patch_all();
    assert!(monkey::is_sync_patched());
}

#[test]
fn a_greenlet_parked_before_unpatching_is_still_woken() {
    let _g = serial();
    let w = Arc::new(AtomicU32::new(0));
    let w1 = w.clone();
    let h = green::spawn(move || wait(&w1, 0));
    green::sleep(Duration::from_millis(20));
    monkey::unpatch_all();
    let w2 = w.clone();
    let r = thread::spawn(move || wake(&w2, 1)).join().unwrap();
    monkey::patch_all();
    assert_eq!(r, Ok(1));
    assert_eq!(h.join().unwrap(), Ok(0));
}

#[test]
fn a_shared_futex_changed_by_another_process_is_noticed() {
    let _g = serial();
    // SAFETY: an anonymous shared mapping of one page, unmapped below.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            4096,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    assert_ne!(p, libc::MAP_FAILED);
    // SAFETY: the page is mapped, aligned and zeroed.
    let w: &'static AtomicU32 = unsafe { &*p.cast::<AtomicU32>() };
    // SAFETY: the child only sleeps (glibc's usleep, not a hooked call), stores and
    // exits: async-signal-safe.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: in the child: async-signal-safe calls only, on the page mapped above.
        unsafe {
            libc::usleep(50_000);
            (*p.cast::<AtomicU32>()).store(1, Ordering::Release);
            libc::_exit(0);
        }
    }
    let t = Instant::now();
    // A shared wait (no FUTEX_PRIVATE_FLAG): the child's change ends it.
    let r = green::spawn(move || futex(w, libc::FUTEX_WAIT, 0, None, 0))
        .join()
        .unwrap();
    assert_eq!(r, Ok(0));
    assert!(t.elapsed() < Duration::from_secs(10));
    let mut status = 0;
    // SAFETY: our child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    // SAFETY: mapped above.
    unsafe { libc::munmap(p, 4096) };
}

#[test]
fn many_greenlets_and_threads_hammer_one_word_without_losing_a_wake() {
    let _g = serial();
    // A counting semaphore built on a futex, taken by 50 greenlets of two hubs and 2
    // plain threads, given back by each after its turn: every taker gets through.
    static SEM: AtomicU32 = AtomicU32::new(2);
    static DONE: AtomicUsize = AtomicUsize::new(0);
    fn take() {
        loop {
            let v = SEM.load(Ordering::Acquire);
            if v > 0 {
                if SEM
                    .compare_exchange(v, v - 1, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
                {
                    return;
                }
            } else {
                let _ = wait(&SEM, 0);
            }
        }
    }
    fn give() {
        SEM.fetch_add(1, Ordering::Release);
        let _ = wake(&SEM, 1);
    }
    fn turns(n: usize) {
        for _ in 0..n {
            take();
            green::yield_now();
            give();
        }
        DONE.fetch_add(n, Ordering::Relaxed);
    }
    let greens = |n| {
        (0..n)
            .map(|_| green::spawn(|| turns(200)))
            .collect::<Vec<_>>()
    };
    let other_hub = thread::spawn(move || {
        for r in green::joinall(greens(25)) {
            r.unwrap();
        }
    });
    let plain: Vec<_> = (0..2).map(|_| thread::spawn(|| turns(200))).collect();
    for r in green::joinall(greens(25)) {
        r.unwrap();
    }
    other_hub.join().unwrap();
    for t in plain {
        t.join().unwrap();
    }
    assert_eq!(DONE.load(Ordering::Relaxed), 52 * 200);
    assert_eq!(SEM.load(Ordering::Relaxed), 2);
}
