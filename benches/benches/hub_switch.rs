//! Two tasks taking turns through the scheduler. One iteration = one round trip = each of
//! the two tasks yields once.
//!
//! * `tokio_current_thread`: two tasks calling `tokio::task::yield_now()` in a loop.
//! * `corosensei`: two raw coroutines resumed alternately by a minimal round-robin driver
//!   (the floor for a hub-mediated round trip: two resumes and two suspends).
//! * `may`: two `may` coroutines calling `may::coroutine::yield_now()` in a loop, on may's
//!   single worker (`common::may_one_worker`), timed inside a coroutine on that worker.
//! * `green`: two greenlets calling `green::yield_now()` in a loop.
//!
//! Group `hub_switch_1000`: the same with 1000 tasks taking turns, where every switch
//! lands on a stack (or task) that 999 others ran since; one iteration = one yield. This
//! is where the stacks' cache coloring (`stack.rs`) shows.
//!
//! Run: `cargo bench -p green-benches --bench hub_switch`.

#[path = "common/mod.rs"]
mod common;

use corosensei::{Coroutine, CoroutineResult};
use criterion::{Criterion, criterion_group, criterion_main};
use std::time::{Duration, Instant};

fn hub_switch(c: &mut Criterion) {
    common::pin_from_env();
    common::may_one_worker();
    let mut group = c.benchmark_group("hub_switch");

    group.bench_function("tokio_current_thread", |b| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        b.iter_custom(|iters| {
            rt.block_on(async move {
                let task = move || async move {
                    for _ in 0..iters {
                        tokio::task::yield_now().await;
                    }
                };
                let start = Instant::now();
                let a = tokio::spawn(task());
                let b = tokio::spawn(task());
                a.await.unwrap();
                b.await.unwrap();
                start.elapsed()
            })
        });
    });

    group.bench_function("corosensei", |b| {
        b.iter_custom(|iters| {
            let body = move |y: &corosensei::Yielder<(), ()>, ()| {
                for _ in 0..iters {
                    y.suspend(());
                }
            };
            let mut tasks = [Coroutine::new(body), Coroutine::new(body)];
            let start = Instant::now();
            let mut live = tasks.len();
            while live > 0 {
                live = 0;
                for t in tasks.iter_mut() {
                    if !t.done()
                        && let CoroutineResult::Yield(()) = t.resume(())
                    {
                        live += 1;
                    }
                }
            }
            start.elapsed()
        });
    });

    group.bench_function("may", |b| {
        b.iter_custom(|iters| {
            common::may_run(move || {
                let task = move || {
                    for _ in 0..iters {
                        may::coroutine::yield_now();
                    }
                };
                let start = Instant::now();
                let a = common::may_spawn(task);
                let b = common::may_spawn(task);
                a.join().unwrap();
                b.join().unwrap();
                start.elapsed()
            })
        });
    });

    // green's variant.
    group.bench_function("green", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            let a = green::spawn(move || {
                for _ in 0..iters {
                    green::yield_now();
                }
            });
            let b = green::spawn(move || {
                for _ in 0..iters {
                    green::yield_now();
                }
            });
            a.join().unwrap();
            b.join().unwrap();
            start.elapsed()
        });
    });

    group.finish();

    const N: u64 = 1000;
    let mut group = c.benchmark_group("hub_switch_1000");
    // `iters` yields in all: N tasks, each yielding `per` times; the time is scaled back
    // to `iters` yields.
    let split = |iters: u64| iters.div_ceil(N).max(1);
    group.bench_function("tokio_current_thread", |b| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        b.iter_custom(|iters| {
            let per = split(iters);
            rt.block_on(async move {
                let start = Instant::now();
                let hs: Vec<_> = (0..N)
                    .map(|_| {
                        tokio::spawn(async move {
                            for _ in 0..per {
                                tokio::task::yield_now().await;
                            }
                        })
                    })
                    .collect();
                for h in hs {
                    h.await.unwrap();
                }
                start.elapsed().mul_f64(iters as f64 / (N * per) as f64)
            })
        });
    });
    group.bench_function("may", |b| {
        b.iter_custom(|iters| {
            let per = split(iters);
            common::may_run(move || {
                let start = Instant::now();
                let hs: Vec<_> = (0..N)
                    .map(|_| {
                        common::may_spawn(move || {
                            for _ in 0..per {
                                may::coroutine::yield_now();
                            }
                        })
                    })
                    .collect();
                for h in hs {
                    h.join().unwrap();
                }
                start.elapsed().mul_f64(iters as f64 / (N * per) as f64)
            })
        });
    });
    group.bench_function("green", |b| {
        b.iter_custom(|iters| {
            let per = split(iters);
            let start = Instant::now();
            let hs: Vec<_> = (0..N)
                .map(|_| {
                    green::spawn(move || {
                        for _ in 0..per {
                            green::yield_now();
                        }
                    })
                })
                .collect();
            green::joinall(hs);
            start.elapsed().mul_f64(iters as f64 / (N * per) as f64)
        });
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(50);
    targets = hub_switch
}
criterion_main!(benches);
