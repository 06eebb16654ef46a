//! Explicit switch round trip A -> B -> A.
//!
//! * `corosensei`: raw `resume` + `suspend` of one coroutine (the floor: what any
//!   corosensei-based runtime pays at least).
//! * `green`: `Greenlet::switch` into a greenlet that switches straight back to its parent.
//!
//! Run: `cargo bench --bench switch` (pinned to `GREEN_BENCH_CPU`, default 0).
#![allow(unexpected_cfgs)]

#[path = "common/mod.rs"]
mod common;

use corosensei::{Coroutine, CoroutineResult};
use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;
use std::time::Duration;

fn switch(c: &mut Criterion) {
    common::pin_from_env();
    let mut group = c.benchmark_group("switch");

    group.bench_function("corosensei", |b| {
        let mut co = Coroutine::new(|y, mut v: u64| loop {
            v = y.suspend(v.wrapping_add(1));
        });
        b.iter(|| match co.resume(black_box(1u64)) {
            CoroutineResult::Yield(v) => black_box(v),
            CoroutineResult::Return(()) => unreachable!(),
        });
    });

    // GREEN PLUG-IN (remove the cfg once the core has landed).
    #[cfg(green_core)]
    group.bench_function("green", |b| {
        let g = green::Greenlet::new(|mut v: green::Value| loop {
            v = green::getcurrent().parent().unwrap().switch(v);
        });
        b.iter(|| black_box(g.switch(black_box(green::Value::from(1u64)))));
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
