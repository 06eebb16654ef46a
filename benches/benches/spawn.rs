//! Spawn + join of a task that returns at once.
//!
//! * `tokio_current_thread`: `tokio::spawn(async {}).await` inside `block_on`.
//! * `corosensei_fresh_stack`: a fresh `DefaultStack` (mmap of the default 1 MiB + guard
//!   page, munmap on drop) each time, coroutine creation and a run to completion.
//! * `corosensei_reused_stack`: the same with one stack reused (what a stack pool buys).
//! * `may`: `may` coroutine spawn + join, from a coroutine on may's single worker.
//! * `green`: `green::spawn(|| ()).join()`.
//!
//! Run: `cargo bench -p green-benches --bench spawn`.

#[path = "common/mod.rs"]
mod common;

use corosensei::stack::DefaultStack;
use corosensei::{Coroutine, CoroutineResult};
use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::{Duration, Instant};

fn spawn(c: &mut Criterion) {
    common::pin_from_env();
    common::may_one_worker();
    let mut group = c.benchmark_group("spawn");

    group.bench_function("tokio_current_thread", |b| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        b.iter_custom(|iters| {
            rt.block_on(async move {
                let start = Instant::now();
                for _ in 0..iters {
                    tokio::spawn(async { black_box(()) }).await.unwrap();
                }
                start.elapsed()
            })
        });
    });

    group.bench_function("corosensei_fresh_stack", |b| {
        b.iter(|| {
            let stack = DefaultStack::default();
            let mut co: Coroutine<(), (), u64> =
                Coroutine::with_stack(stack, |_, ()| black_box(7u64));
            match co.resume(()) {
                CoroutineResult::Return(v) => black_box(v),
                CoroutineResult::Yield(()) => unreachable!(),
            }
        });
    });

    group.bench_function("corosensei_reused_stack", |b| {
        let mut stack = Some(DefaultStack::default());
        b.iter(|| {
            let mut co: Coroutine<(), (), u64, DefaultStack> =
                Coroutine::with_stack(stack.take().unwrap(), |_, ()| black_box(7u64));
            let v = match co.resume(()) {
                CoroutineResult::Return(v) => black_box(v),
                CoroutineResult::Yield(()) => unreachable!(),
            };
            stack = Some(co.into_stack());
            v
        });
    });

    group.bench_function("may", |b| {
        b.iter_custom(|iters| {
            common::may_run(move || {
                let start = Instant::now();
                for _ in 0..iters {
                    black_box(common::may_spawn(|| black_box(7u64)).join().unwrap());
                }
                start.elapsed()
            })
        });
    });

    // green's variant.
    group.bench_function("green", |b| {
        b.iter(|| black_box(green::spawn(|| black_box(7u64)).join().unwrap()));
    });

    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(50);
    targets = spawn
}
criterion_main!(benches);
