//! What the monkey patch's pool and future paths cost per call, and the sync `postgres`
//! client three ways. Wall clock, one thread pinned (`GREEN_BENCH_CPU`, default 0):
//!
//! - `getaddrinfo("localhost")` through std's `ToSocketAddrs` from a greenlet, hooked
//!   (`patch_dns`: a round trip to the blocking pool) and real (patch off);
//! - a 4 KiB `pread` of a cached file from a greenlet, under `patch_files` (the pool)
//!   and plain;
//! - `green::block_on` of a ready future.
//!
//! Each pair runs interleaved, round after round (A, B, A, B, ...); the figure is the
//! median over rounds of the mean per call, with the spread (smallest to largest round).
//!
//! Then, if PostgreSQL answers on 127.0.0.1:5432 (user postgres, password "green", as
//! `.ci/services` sets up; `GREEN_BENCH_PG=0` skips it): 100 greenlets each run
//! `SELECT pg_sleep(0.1)` with their own client, serially (the default: each query's
//! loop blocks the thread), inside `green::monkey::event_loop`, and through
//! `green::run_blocking` with a pool of 20 clients.

#[path = "common/mod.rs"]
mod common;

use std::net::ToSocketAddrs;
use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

/// Calls per round.
const CALLS: usize = 200;

/// Rounds per pair (a few for the smoke run of `cargo test --all-targets`).
fn rounds() -> usize {
    if common::smoke_test() { 3 } else { 21 }
}

/// Runs `f` `CALLS` times; the mean time per call.
fn per_call(mut f: impl FnMut()) -> f64 {
    let t = Instant::now();
    for _ in 0..CALLS {
        f();
    }
    t.elapsed().as_secs_f64() / CALLS as f64
}

/// Median and spread of per-call times, as text.
fn summary(mut xs: Vec<f64>) -> String {
    xs.sort_by(f64::total_cmp);
    let us = |x: f64| x * 1e6;
    format!(
        "{:8.2} µs  (rounds {:.2}–{:.2})",
        us(common::median(&xs)),
        us(xs[0]),
        us(xs[xs.len() - 1])
    )
}

/// Interleaves `a` and `b` for `ROUNDS` rounds: their per-call times.
fn pair(mut a: impl FnMut() -> f64, mut b: impl FnMut() -> f64) -> (Vec<f64>, Vec<f64>) {
    let (mut xa, mut xb) = (Vec::new(), Vec::new());
    for _ in 0..rounds() {
        xa.push(a());
        xb.push(b());
    }
    (xa, xb)
}

fn lookup() {
    let n = ("localhost", 80).to_socket_addrs().unwrap().count();
    std::hint::black_box(n);
}

fn costs() {
    let (hooked, real) = pair(
        || {
            green::monkey::patch_all();
            per_call(lookup)
        },
        || {
            green::monkey::unpatch_all();
            let t = per_call(lookup);
            green::monkey::patch_all();
            t
        },
    );
    println!("getaddrinfo(\"localhost\") hooked  {}", summary(hooked));
    println!("getaddrinfo(\"localhost\") real    {}", summary(real));

    let path = std::env::temp_dir().join(format!("green-bench-{}", std::process::id()));
    std::fs::write(&path, vec![1u8; 1 << 20]).unwrap();
    let file = std::fs::File::open(&path).unwrap();
    let read = || {
        let mut buf = [0u8; 4096];
        let n = file.read_at(&mut buf, 8192).unwrap();
        std::hint::black_box(n);
    };
    let (patched, plain) = pair(
        || {
            green::monkey::patch_files();
            per_call(read)
        },
        || {
            green::monkey::unpatch_all();
            green::monkey::patch_all();
            per_call(read)
        },
    );
    println!("4 KiB pread, patch_files      {}", summary(patched));
    println!("4 KiB pread, plain            {}", summary(plain));
    std::fs::remove_file(&path).unwrap();

    let ready: Vec<f64> = (0..rounds())
        .map(|_| {
            per_call(|| {
                std::hint::black_box(green::block_on(std::future::ready(1u8)));
            })
        })
        .collect();
    println!("block_on(ready future)        {}", summary(ready));
}

const CONNECT: &str = "host=127.0.0.1 port=5432 user=postgres password=green dbname=postgres";

fn connect() -> postgres::Client {
    postgres::Client::connect(CONNECT, postgres::NoTls).unwrap()
}

/// 100 greenlets, each with its own client (made on the pool beforehand), each running
/// `pg_sleep(0.1)` through `query`; the time until all are done.
fn hundred(query: fn(postgres::Client) -> postgres::Client) -> Duration {
    let made: Vec<_> = (0..100)
        .map(|_| green::spawn(|| green::run_blocking(connect)))
        .collect();
    let clients: Vec<_> = green::joinall(made)
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let start = Instant::now();
    let hs: Vec<_> = clients
        .into_iter()
        .map(|c| green::spawn(move || query(c)))
        .collect();
    let done: Vec<_> = green::joinall(hs).into_iter().map(Result::unwrap).collect();
    let took = start.elapsed();
    // Closed on the pool, outside the measurement.
    let closing: Vec<_> = done
        .into_iter()
        .map(|c| green::spawn(move || green::run_blocking(move || drop(c))))
        .collect();
    green::joinall(closing);
    took
}

fn sleep_once(mut c: postgres::Client) -> postgres::Client {
    c.execute("SELECT pg_sleep(0.1)", &[]).unwrap();
    c
}

fn postgres_three_ways() {
    let up = std::net::TcpStream::connect_timeout(
        &([127, 0, 0, 1], 5432).into(),
        Duration::from_secs(1),
    )
    .is_ok();
    if !up || std::env::var("GREEN_BENCH_PG").is_ok_and(|v| v == "0") {
        println!("postgres: skipped (no server on 127.0.0.1:5432, or GREEN_BENCH_PG=0)");
        return;
    }
    let serial = hundred(sleep_once);
    println!(
        "100 x pg_sleep(0.1), serial (default)     {:6.2} s",
        serial.as_secs_f64()
    );
    let scoped = hundred(|c| green::monkey::event_loop(move || sleep_once(c)));
    println!(
        "100 x pg_sleep(0.1), inside event_loop    {:6.2} s",
        scoped.as_secs_f64()
    );
    // The documented way: 20 clients shared through a queue, each query on the pool.
    let made: Vec<_> = (0..20)
        .map(|_| green::spawn(|| green::run_blocking(connect)))
        .collect();
    let pool = green::Queue::new();
    for c in green::joinall(made) {
        pool.put(c.unwrap()).unwrap();
    }
    let start = Instant::now();
    let hs: Vec<_> = (0..100)
        .map(|_| {
            let q = pool.clone();
            green::spawn(move || {
                let c = q.get().unwrap();
                let c = green::run_blocking(move || sleep_once(c));
                q.put(c).unwrap();
            })
        })
        .collect();
    green::joinall(hs);
    let pooled = start.elapsed();
    println!(
        "100 x pg_sleep(0.1), run_blocking, 20 clients {:6.2} s",
        pooled.as_secs_f64()
    );
}

fn main() {
    common::pin_from_env();
    green::monitor::set_stall_report(None);
    green::monkey::patch_all();
    // The main greenlet counts as one once the thread has a hub.
    green::sleep(Duration::ZERO);
    println!(
        "monkey_costs: {} rounds of {CALLS} calls, medians",
        rounds()
    );
    costs();
    if !common::smoke_test() {
        postgres_three_ways();
    }
}
