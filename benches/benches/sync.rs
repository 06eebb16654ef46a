//! std's synchronisation under the monkey patch (`patch_sync`), beside green's own.
//!
//! * `mutex_uncontended`: `Mutex::lock` + unlock in a greenlet, unpatched vs patched (the
//!   fast path never reaches the futex: no change expected).
//! * `mpsc_uncontended`: `send` + `recv` of one message on an unbounded std channel in
//!   one greenlet, unpatched vs patched.
//! * `lock_handoff`: two greenlets take turns holding a lock across a `yield_now`, so
//!   every `lock` waits: std's `Mutex` (patched: the futex hook parks the waiter) vs
//!   green's `Lock`; time per hand-off.
//! * `pingpong_greenlets`: two greenlets hand a token back and forth: std `Condvar`
//!   (patched) vs green's bounded `Queue`s; time per hand-off. (std's channels cannot be
//!   used here: they never wake a waiter of the sender's own OS thread.)
//! * `pingpong_threads`: a std `mpsc` round trip between a greenlet (patched: it waits
//!   through the thread's park word, woken through the hub) and a plain thread, vs the
//!   same between two plain threads: what a wake from another thread costs.
//!
//! Run: `cargo bench -p green-benches --bench sync` (rounds: `GREEN_SYNC_ROUNDS`,
//! default 7; variants interleaved; medians with min–max; pinned to `GREEN_BENCH_CPU`,
//! default 0; the other thread of the two-thread cases to CPU 1).

#[path = "common/mod.rs"]
mod common;

use common::{Row, median};
use std::hint::black_box;
use std::sync::{Arc, Condvar, Mutex, mpsc};
use std::time::{Duration, Instant};

fn per_op(d: Duration, n: u64) -> f64 {
    d.as_nanos() as f64 / n as f64
}

fn mutex_uncontended(n: u64) -> f64 {
    let m = Mutex::new(0u64);
    let t = Instant::now();
    for _ in 0..n {
        *black_box(&m).lock().unwrap() += 1;
    }
    per_op(t.elapsed(), n)
}

fn mpsc_uncontended(n: u64) -> f64 {
    let (tx, rx) = mpsc::channel::<u64>();
    let t = Instant::now();
    for i in 0..n {
        tx.send(i).unwrap();
        black_box(rx.recv().unwrap());
    }
    per_op(t.elapsed(), n)
}

fn std_handoff(n: u64) -> f64 {
    let m = Arc::new(Mutex::new(0u64));
    let turn = |m: Arc<Mutex<u64>>| {
        green::spawn(move || {
            for _ in 0..n {
                let mut g = m.lock().unwrap();
                *g += 1;
                green::yield_now();
                drop(g);
                green::yield_now();
            }
        })
    };
    let t = Instant::now();
    let hs = vec![turn(m.clone()), turn(m.clone())];
    for r in green::joinall(hs) {
        r.unwrap();
    }
    per_op(t.elapsed(), 2 * n)
}

fn green_handoff(n: u64) -> f64 {
    let l = std::rc::Rc::new(green::Lock::new());
    let turn = |l: std::rc::Rc<green::Lock>| {
        green::spawn(move || {
            for _ in 0..n {
                let g = l.acquire().unwrap();
                green::yield_now();
                drop(g);
                green::yield_now();
            }
        })
    };
    let t = Instant::now();
    let hs = vec![turn(l.clone()), turn(l.clone())];
    for r in green::joinall(hs) {
        r.unwrap();
    }
    per_op(t.elapsed(), 2 * n)
}

fn condvar_pingpong(n: u64) -> f64 {
    let pair = Arc::new((Mutex::new(0u64), Condvar::new()));
    let player = |p: Arc<(Mutex<u64>, Condvar)>, parity: u64| {
        green::spawn(move || {
            let (m, cv) = &*p;
            let mut g = m.lock().unwrap();
            while *g < 2 * n {
                while *g % 2 != parity && *g < 2 * n {
                    g = cv.wait(g).unwrap();
                }
                if *g >= 2 * n {
                    break;
                }
                *g += 1;
                cv.notify_one();
            }
        })
    };
    let t = Instant::now();
    let hs = vec![player(pair.clone(), 0), player(pair.clone(), 1)];
    for r in green::joinall(hs) {
        r.unwrap();
    }
    per_op(t.elapsed(), 2 * n)
}

fn queue_pingpong(n: u64) -> f64 {
    let (a, b) = (green::Queue::bounded(1), green::Queue::bounded(1));
    let (a2, b2) = (a.clone(), b.clone());
    let t = Instant::now();
    let pong = green::spawn(move || {
        for _ in 0..n {
            let v: u64 = a2.get().unwrap();
            b2.put(v + 1).unwrap();
        }
    });
    let ping = green::spawn(move || {
        for i in 0..n {
            a.put(i).unwrap();
            black_box(b.get().unwrap());
        }
    });
    for r in green::joinall(vec![ping, pong]) {
        r.unwrap();
    }
    per_op(t.elapsed(), 2 * n)
}

/// Round trips of a std channel between the calling context and a plain thread.
fn mpsc_round_trips(n: u64) -> f64 {
    let (to, from_main) = mpsc::channel::<u64>();
    let (back, from_thread) = mpsc::channel::<u64>();
    let echo = std::thread::spawn(move || {
        common::pin_to_cpu(1);
        for v in from_main {
            back.send(v).unwrap();
        }
    });
    let t = Instant::now();
    for i in 0..n {
        to.send(i).unwrap();
        black_box(from_thread.recv().unwrap());
    }
    let took = t.elapsed();
    drop(to);
    echo.join().unwrap();
    per_op(took, n)
}

fn green_thread_pingpong(n: u64) -> f64 {
    green::spawn(move || mpsc_round_trips(n)).join().unwrap()
}

fn thread_thread_pingpong(n: u64) -> f64 {
    std::thread::spawn(move || mpsc_round_trips(n))
        .join()
        .unwrap()
}

type Variant = (&'static str, &'static str, bool, fn(u64) -> f64, u64);

fn main() {
    let smoke = common::smoke_test();
    let rounds: usize = std::env::var("GREEN_SYNC_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if smoke { 1 } else { 7 });
    let scale = if smoke { 1000 } else { 1 };
    common::pin_from_env();
    // (case, variant, patched, function, iterations)
    let variants: Vec<Variant> = vec![
        (
            "mutex_uncontended",
            "unpatched",
            false,
            mutex_uncontended,
            10_000_000,
        ),
        (
            "mutex_uncontended",
            "patched",
            true,
            mutex_uncontended,
            10_000_000,
        ),
        (
            "mpsc_uncontended",
            "unpatched",
            false,
            mpsc_uncontended,
            2_000_000,
        ),
        (
            "mpsc_uncontended",
            "patched",
            true,
            mpsc_uncontended,
            2_000_000,
        ),
        ("lock_handoff", "green_lock", true, green_handoff, 200_000),
        (
            "lock_handoff",
            "std_mutex_patched",
            true,
            std_handoff,
            200_000,
        ),
        (
            "pingpong_greenlets",
            "green_queue",
            true,
            queue_pingpong,
            200_000,
        ),
        (
            "pingpong_greenlets",
            "std_condvar_patched",
            true,
            condvar_pingpong,
            200_000,
        ),
        (
            "pingpong_threads",
            "thread_thread",
            false,
            thread_thread_pingpong,
            20_000,
        ),
        (
            "pingpong_threads",
            "greenlet_thread_patched",
            true,
            green_thread_pingpong,
            20_000,
        ),
    ];
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
    // Creates this thread's hub: the uncontended cases run in its main greenlet.
    green::yield_now();
    for _ in 0..rounds {
        for (k, &(_, _, patched, f, n)) in variants.iter().enumerate() {
            if patched {
                green::monkey::patch_all();
            } else {
                green::monkey::unpatch_all();
            }
            samples[k].push(f((n / scale).max(1)));
        }
    }
    green::monkey::patch_all();
    println!("sync: ns per operation, median of {rounds} rounds [min - max]");
    let mut rows = Vec::new();
    for (k, &(case, variant, ..)) in variants.iter().enumerate() {
        let s = &samples[k];
        let min = s.iter().cloned().fold(f64::INFINITY, f64::min);
        let max = s.iter().cloned().fold(0.0, f64::max);
        let med = median(s);
        println!("{case:<20} {variant:<26} {med:>10.1} ns  [{min:.1} - {max:.1}]");
        rows.push(Row {
            case: case.to_string(),
            variant: variant.to_string(),
            value: med,
            unit: "ns".into(),
            higher_is_better: false,
            baseline: k % 2 == 0,
        });
    }
    common::write_results("sync", &rows);
}
