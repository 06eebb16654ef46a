//! How much slower do two computations get when they switch after
//! every single step? f1 sums i over 0..N (wrapping), f2 multiplies (wrapping, by i|1).
//!
//! * `sequential`: f1 to completion, then f2.
//! * `corosensei`: two coroutines, a driver resumes them alternately (one suspend+resume
//!   per step).
//! * `generator`: the same with two `generator` crate generators (may's coroutines).
//! * `may_yield`: two `may` coroutines that call `may::coroutine::yield_now()` after every
//!   step, on may's single worker (the time includes starting them there).
//! * `green_switch`: two greenlets that `switch` directly to each other after every step.
//! * `green_yield`: two spawned greenlets that call `green::yield_now()` after every step.
//!
//! The same experiment in Python with greenlet shows a slowdown of about 4.5x.
//!
//! Run: `cargo bench -p green-benches --bench slowdown` (N = `GREEN_SLOWDOWN_N` or first arg, default
//! 10_000_000; rounds = `GREEN_SLOWDOWN_ROUNDS`, default 5; variants run interleaved,
//! medians reported; pinned to `GREEN_BENCH_CPU`, default 0).

#[path = "common/mod.rs"]
mod common;

use common::{Row, fmt_dur, median};
use corosensei::{Coroutine, CoroutineResult, Yielder};
use std::hint::black_box;
use std::time::{Duration, Instant};

#[inline(always)]
fn step1(acc: u64, i: u64) -> u64 {
    acc.wrapping_add(black_box(i))
}

#[inline(always)]
fn step2(acc: u64, i: u64) -> u64 {
    acc.wrapping_mul(black_box(i) | 1)
}

fn sequential(n: u64) -> (u64, u64) {
    let mut a = 0u64;
    for i in 0..n {
        a = step1(a, i);
    }
    let mut b = 1u64;
    for i in 0..n {
        b = step2(b, i);
    }
    (black_box(a), black_box(b))
}

fn corosensei(n: u64) -> (u64, u64) {
    let mut c1 = Coroutine::new(move |y: &Yielder<(), ()>, ()| {
        let mut a = 0u64;
        for i in 0..n {
            a = step1(a, i);
            y.suspend(());
        }
        a
    });
    let mut c2 = Coroutine::new(move |y: &Yielder<(), ()>, ()| {
        let mut b = 1u64;
        for i in 0..n {
            b = step2(b, i);
            y.suspend(());
        }
        b
    });
    let (mut r1, mut r2) = (None, None);
    while r1.is_none() || r2.is_none() {
        if r1.is_none()
            && let CoroutineResult::Return(v) = c1.resume(())
        {
            r1 = Some(v);
        }
        if r2.is_none()
            && let CoroutineResult::Return(v) = c2.resume(())
        {
            r2 = Some(v);
        }
    }
    (black_box(r1.unwrap()), black_box(r2.unwrap()))
}

fn generator(n: u64) -> (u64, u64) {
    let mut g1 = generator::Gn::<()>::new_scoped(move |mut s| {
        let mut a = 0u64;
        for i in 0..n {
            a = step1(a, i);
            s.yield_with(0);
        }
        a
    });
    let mut g2 = generator::Gn::<()>::new_scoped(move |mut s| {
        let mut b = 1u64;
        for i in 0..n {
            b = step2(b, i);
            s.yield_with(0);
        }
        b
    });
    let (mut r1, mut r2) = (0, 1);
    while !g1.is_done() || !g2.is_done() {
        if !g1.is_done() {
            r1 = g1.resume().unwrap_or(r1);
        }
        if !g2.is_done() {
            r2 = g2.resume().unwrap_or(r2);
        }
    }
    (black_box(r1), black_box(r2))
}

fn may_yield(n: u64) -> (u64, u64) {
    common::may_run(move || {
        let h1 = common::may_spawn(move || {
            let mut a = 0u64;
            for i in 0..n {
                a = step1(a, i);
                may::coroutine::yield_now();
            }
            a
        });
        let h2 = common::may_spawn(move || {
            let mut b = 1u64;
            for i in 0..n {
                b = step2(b, i);
                may::coroutine::yield_now();
            }
            b
        });
        (black_box(h1.join().unwrap()), black_box(h2.join().unwrap()))
    })
}

// green's variant.
fn green_switch(n: u64) -> (u64, u64) {
    use green::{Greenlet, Value};
    use std::cell::{Cell, RefCell};
    use std::rc::Rc;
    // Each greenlet needs the other's handle: hand them over through cells, which are
    // emptied at the end so the two greenlets do not keep each other alive.
    let ga_cell: Rc<RefCell<Option<Greenlet>>> = Rc::new(RefCell::new(None));
    let gb_cell: Rc<RefCell<Option<Greenlet>>> = Rc::new(RefCell::new(None));
    let out = Rc::new((Cell::new(0u64), Cell::new(0u64)));
    let (gb2, o1) = (gb_cell.clone(), out.clone());
    let ga = Greenlet::new(move |_: Value| {
        let gb = gb2.borrow().clone().unwrap();
        let mut a = 0u64;
        for i in 0..n {
            a = step1(a, i);
            gb.switch(());
        }
        o1.0.set(a);
    });
    let (ga2, o2) = (ga_cell.clone(), out.clone());
    let gb = Greenlet::new(move |_: Value| {
        let ga = ga2.borrow().clone().unwrap();
        let mut b = 1u64;
        for i in 0..n {
            b = step2(b, i);
            o2.1.set(b);
            ga.switch(());
        }
    });
    *ga_cell.borrow_mut() = Some(ga.clone());
    *gb_cell.borrow_mut() = Some(gb.clone());
    // A: step, switch to B; B: step, switch to A; ... A's loop ends after B's last step
    // and A returns to its parent (here). B is left suspended after its last switch.
    ga.switch(());
    ga_cell.borrow_mut().take();
    gb_cell.borrow_mut().take();
    gb.kill();
    (black_box(out.0.get()), black_box(out.1.get()))
}

fn green_yield(n: u64) -> (u64, u64) {
    let h1 = green::spawn(move || {
        let mut a = 0u64;
        for i in 0..n {
            a = step1(a, i);
            green::yield_now();
        }
        a
    });
    let h2 = green::spawn(move || {
        let mut b = 1u64;
        for i in 0..n {
            b = step2(b, i);
            green::yield_now();
        }
        b
    });
    (black_box(h1.join().unwrap()), black_box(h2.join().unwrap()))
}

type Variant = (&'static str, fn(u64) -> (u64, u64));

fn main() {
    common::pin_from_env();
    common::may_one_worker();
    let n: u64 = std::env::var("GREEN_SLOWDOWN_N")
        .ok()
        .or_else(|| common::positional_args().into_iter().next())
        .and_then(|s| s.replace('_', "").parse().ok())
        .unwrap_or(10_000_000);
    let rounds: usize = std::env::var("GREEN_SLOWDOWN_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    // `cargo test --all-targets`: a quick smoke run.
    let (n, rounds) = if common::smoke_test() {
        (10_000, 1)
    } else {
        (n, rounds)
    };

    let variants: Vec<Variant> = vec![
        ("sequential", sequential),
        ("corosensei", corosensei),
        ("generator", generator),
        ("may_yield", may_yield),
        // green's variants.
        ("green_switch", green_switch),
        ("green_yield", green_yield),
    ];

    let expect = sequential(n);
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
    for _ in 0..rounds {
        for (k, (name, f)) in variants.iter().enumerate() {
            let t = Instant::now();
            let r = f(n);
            let e = t.elapsed();
            assert_eq!(r, expect, "{name} computed a different result");
            times[k].push(e.as_secs_f64());
        }
    }

    let base = median(&times[0]);
    println!("slowdown: N = {n}, {rounds} rounds interleaved, medians (min..max)");
    println!(
        "{:<14} {:>12} {:>12} {:>10}",
        "variant", "median", "per step", "slowdown"
    );
    let mut rows = Vec::new();
    for (k, (name, _)) in variants.iter().enumerate() {
        let m = median(&times[k]);
        let lo = times[k].iter().cloned().fold(f64::INFINITY, f64::min);
        let hi = times[k].iter().cloned().fold(0.0, f64::max);
        let per_step_ns = m * 1e9 / (2 * n) as f64;
        println!(
            "{:<14} {:>12} {:>9.2} ns {:>9.2}x   ({}..{})",
            name,
            fmt_dur(Duration::from_secs_f64(m)),
            per_step_ns,
            m / base,
            fmt_dur(Duration::from_secs_f64(lo)),
            fmt_dur(Duration::from_secs_f64(hi)),
        );
        rows.push(Row {
            case: format!("n{n}"),
            variant: name.to_string(),
            value: m,
            unit: "s".into(),
            higher_is_better: false,
            baseline: k == 0,
        });
    }
    println!("(Python with greenlet: about 4.5x)");
    common::write_results("slowdown", &rows);
}
