//! Explicit switch round trip A -> B -> A.
//!
//! * `corosensei`: raw `resume` + `suspend` of one coroutine (the floor: what any
//!   corosensei-based runtime pays at least).
//! * `generator`: raw `send` + `yield_` of one `generator` crate generator (the stackful
//!   coroutines the `may` runtime is built on), passing a u64 each way as `corosensei` does.
//! * `green`: `Greenlet::switch` into a greenlet that switches straight back to its parent.
//!
//! Run: `cargo bench -p green-benches --bench switch` (pinned to `GREEN_BENCH_CPU`, default 0).

#[path = "common/mod.rs"]
mod common;

use corosensei::{Coroutine, CoroutineResult};
use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::Duration;

fn switch(c: &mut Criterion) {
    common::pin_from_env();
    let mut group = c.benchmark_group("switch");

    group.bench_function("corosensei", |b| {
        let mut co = Coroutine::new(|y, mut v: u64| {
            loop {
                v = y.suspend(v.wrapping_add(1));
            }
        });
        b.iter(|| match co.resume(black_box(1u64)) {
            CoroutineResult::Yield(v) => black_box(v),
            CoroutineResult::Return(()) => unreachable!(),
        });
    });

    group.bench_function("generator", |b| {
        let mut g = generator::Gn::<u64>::new_scoped(|mut s| {
            let mut v = 0u64;
            loop {
                v = s.yield_(v.wrapping_add(1)).unwrap_or(0);
            }
        });
        b.iter(|| black_box(g.send(black_box(1u64))));
    });

    // green's variant.
    // `green`: passes `()` (a zero-sized `Value`, no allocation), the switch itself.
    group.bench_function("green", |b| {
        let main = green::getcurrent();
        let g = green::Greenlet::new(move |_: green::Value| {
            loop {
                main.switch(());
            }
        });
        b.iter(|| black_box(g.switch(())));
        g.kill();
    });

    // `green_u64`: passes a u64 each way (each `Value` boxes its payload), to compare with
    // `corosensei`, which passes a u64 by value.
    group.bench_function("green_u64", |b| {
        let main = green::getcurrent();
        let g = green::Greenlet::new(move |mut v: green::Value| {
            loop {
                let x = v.get::<u64>().unwrap();
                v = main.switch(x.wrapping_add(1));
            }
        });
        b.iter(|| black_box(g.switch(black_box(1u64)).get::<u64>().unwrap()));
        g.kill();
    });

    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(50);
    targets = switch
}
criterion_main!(benches);
