//! The seeds' first gevent example: `eat` sleeps 2 s, `play_phone` 1 s; spawned and
//! joined together they take about 2 s, not 3 s, because `sleep` switches.
//!
//! Run: `cargo run --example spawn_join`

#[path = "shared/mod.rs"]
mod shared;

use std::time::{Duration, Instant};

const USAGE: &str = "\
usage: spawn_join

Spawns eat (sleeps 2 s) and play_phone (sleeps 1 s) and joins both: about 2 s, not 3 s.
";

fn eat() {
    println!("eat food 1");
    green::sleep(Duration::from_secs(2)); // 等饭来 (waiting for the food)
    println!("eat food 2");
}

fn play_phone() {
    println!("play phone 1");
    green::sleep(Duration::from_secs(1)); // 网卡了 (the network is slow)
    println!("play phone 2");
}

fn main() {
    shared::cli::Args::none(USAGE);
    let start = Instant::now();
    let g1 = green::spawn(eat);
    let g2 = green::spawn(play_phone);
    for r in green::joinall(vec![g1, g2]) {
        if let Err(e) = r {
            eprintln!("a greenlet failed: {e}");
        }
    }
    println!("主");
    println!(
        "took {:.2} s (the sleeps overlapped: 2 s, not 3 s)",
        start.elapsed().as_secs_f64()
    );
}
