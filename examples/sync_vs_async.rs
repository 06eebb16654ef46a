//! The seeds' synchronous vs asynchronous `task(pid)`: each task sleeps 0.5 s.
//! Run one after another they take 4.5 s; spawned and joined with `joinall`, 0.5 s.
//!
//! Run: `cargo run --example sync_vs_async`

#[path = "shared/mod.rs"]
mod shared;

use std::time::{Duration, Instant};

const USAGE: &str = "\
usage: sync_vs_async

Runs the seeds' task(pid), a 0.5 s sleep, nine times in a row (4.5 s), then spawns it
ten times and joins them all (0.5 s).
";

fn task(pid: u32) {
    // Some non-deterministic task
    green::sleep(Duration::from_millis(500));
    println!("Task {pid} done");
}

fn synchronous() {
    for i in 1..10 {
        task(i);
    }
}

fn asynchronous() {
    let threads: Vec<_> = (0..10).map(|i| green::spawn(move || task(i))).collect();
    for r in green::joinall(threads) {
        if let Err(e) = r {
            eprintln!("a task failed: {e}");
        }
    }
}

fn main() {
    shared::cli::Args::none(USAGE);
    println!("Synchronous:");
    let t = Instant::now();
    synchronous();
    let sync_time = t.elapsed();

    println!("Asynchronous:");
    let t = Instant::now();
    asynchronous();
    let async_time = t.elapsed();

    println!(
        "synchronous: {:.2} s for 9 tasks; asynchronous: {:.2} s for 10 tasks",
        sync_time.as_secs_f64(),
        async_time.as_secs_f64()
    );
}
