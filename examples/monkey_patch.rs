//! The seeds' `monkey.patch_all()` example: `eat` and `play_phone` call plain
//! `std::thread::sleep` (Python's `time.sleep`), yet, once patched, the two greenlets
//! overlap: about 2 s in total instead of 3 s.
//!
//! Run: `cargo run --example monkey_patch` (patched, ~2 s)
//! and `cargo run --example monkey_patch -- --unpatched` (the same code, ~3 s).

#[path = "shared/mod.rs"]
mod shared;

use std::thread;
use std::time::{Duration, Instant};

use shared::cli;

const USAGE: &str = "\
usage: monkey_patch [--unpatched]

Two greenlets calling plain std::thread::sleep (2 s and 1 s): about 2 s in all once
green::monkey::patch_all() is on, 3 s without it.

Options:
  --unpatched   skip the patch: the sleeps block the thread one after the other
  -h, --help    print this help
";

fn eat() {
    println!("eat food 1");
    thread::sleep(Duration::from_secs(2)); // 等饭来: a plain std sleep
    println!("eat food 2");
}

fn play_phone() {
    println!("play phone 1");
    thread::sleep(Duration::from_secs(1)); // 网卡了: a plain std sleep
    println!("play phone 2");
}

fn main() {
    let mut unpatched = false;
    let mut args = cli::Args::new(USAGE);
    while let Some(arg) = args.next() {
        match arg {
            cli::Long("unpatched") => unpatched = true,
            other => cli::reject(other),
        }
    }
    // The seeds' rule: put `monkey.patch_all()` at the top, before anything that sleeps
    // or opens sockets.
    if !unpatched {
        green::monkey::patch_all();
    }

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
        "{}: {:.2} s",
        if unpatched { "unpatched" } else { "patched" },
        start.elapsed().as_secs_f64()
    );
}
