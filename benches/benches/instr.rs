//! Instruction counts per round trip, measured with valgrind's callgrind.
//!
//! For each variant this binary re-runs itself under
//! `valgrind --tool=callgrind --callgrind-out-file=/dev/null` twice, with `LO` and `HI`
//! round trips, and reports `(Ir(HI) - Ir(LO)) / (HI - LO)`: the instructions of one round
//! trip with start-up and tear-down cancelled out.
//!
//! * `corosensei_switch`: one resume + suspend (as `switch/corosensei`).
//! * `generator_switch`: one `send` + `yield_` of a `generator` crate generator (as
//!   `switch/generator`).
//! * `may_yield`, `may_spawn`: as `hub_switch/may` and `spawn/may` (may on one worker; the
//!   worker thread's instructions are counted with the rest).
//! * `corosensei_two`: two coroutines alternated by a driver (as `hub_switch/corosensei`).
//! * `tokio_yield`: two tokio current-thread tasks calling `yield_now` (as
//!   `hub_switch/tokio_current_thread`).
//! * `green_switch`, `green_switch_u64`, `green_yield`: as `switch/green`,
//!   `switch/green_u64` and `hub_switch/green`.
//! * `tokio_spawn`, `green_spawn`: spawn a task that returns at once and wait for it (as
//!   `spawn/tokio_current_thread` and `spawn/green`).
//! * `green_echo`: one 32-byte round trip over a loopback `green::net` TCP pair, both
//!   ends green (user-space instructions only: callgrind does not see the kernel).
//!
//! Run: `cargo bench -p green-benches --bench instr` (skips itself when valgrind is not installed).

#[path = "common/mod.rs"]
mod common;

use corosensei::{Coroutine, Yielder};
use std::hint::black_box;
use std::process::Command;

const LO: u64 = 1_000;
const HI: u64 = 101_000;

fn corosensei_switch(n: u64) {
    let mut co = Coroutine::new(|y: &Yielder<u64, u64>, mut v: u64| {
        loop {
            v = y.suspend(v.wrapping_add(1));
        }
    });
    for i in 0..n {
        black_box(co.resume(black_box(i)));
    }
}

fn generator_switch(n: u64) {
    let mut g = generator::Gn::<u64>::new_scoped(|mut s| {
        let mut v = 0u64;
        loop {
            v = s.yield_(v.wrapping_add(1)).unwrap_or(0);
        }
    });
    for i in 0..n {
        black_box(g.send(black_box(i)));
    }
}

fn may_yield(n: u64) {
    common::may_one_worker();
    common::may_run(move || {
        let task = move || {
            for _ in 0..n {
                may::coroutine::yield_now();
            }
        };
        let a = common::may_spawn(task);
        let b = common::may_spawn(task);
        a.join().unwrap();
        b.join().unwrap();
    });
}

fn may_spawn(n: u64) {
    common::may_one_worker();
    common::may_run(move || {
        for _ in 0..n {
            black_box(common::may_spawn(|| black_box(7u64)).join().unwrap());
        }
    });
}

fn corosensei_two(n: u64) {
    let body = move |y: &Yielder<(), ()>, ()| {
        for _ in 0..n {
            y.suspend(());
        }
    };
    let mut a = Coroutine::new(body);
    let mut b = Coroutine::new(body);
    while !a.done() || !b.done() {
        if !a.done() {
            black_box(a.resume(()));
        }
        if !b.done() {
            black_box(b.resume(()));
        }
    }
}

fn tokio_yield(n: u64) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async move {
        let task = move || async move {
            for _ in 0..n {
                tokio::task::yield_now().await;
            }
        };
        let a = tokio::spawn(task());
        let b = tokio::spawn(task());
        a.await.unwrap();
        b.await.unwrap();
    });
}

// green's variant.
fn green_switch(n: u64) {
    let main = green::getcurrent();
    let g = green::Greenlet::new(move |_: green::Value| {
        loop {
            main.switch(());
        }
    });
    for _ in 0..n {
        black_box(g.switch(()));
    }
    g.kill();
}

fn green_switch_u64(n: u64) {
    let main = green::getcurrent();
    let g = green::Greenlet::new(move |mut v: green::Value| {
        loop {
            let x = v.get::<u64>().unwrap();
            v = main.switch(x.wrapping_add(1));
        }
    });
    for i in 0..n {
        black_box(g.switch(black_box(i)).get::<u64>().unwrap());
    }
    g.kill();
}

fn green_yield(n: u64) {
    let a = green::spawn(move || {
        for _ in 0..n {
            green::yield_now();
        }
    });
    let b = green::spawn(move || {
        for _ in 0..n {
            green::yield_now();
        }
    });
    a.join().unwrap();
    b.join().unwrap();
}

fn tokio_spawn(n: u64) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async move {
        for i in 0..n {
            black_box(tokio::spawn(async move { i }).await.unwrap());
        }
    });
}

fn green_spawn(n: u64) {
    for i in 0..n {
        black_box(green::spawn(move || i).join().unwrap());
    }
}

/// One 32-byte message echoed over a loopback `green::net` TCP pair: the client (main)
/// writes and reads, a server greenlet reads and writes back. Counts the user-space side
/// of both ends: the reactor's wait/wake, the readiness cache, the switches.
fn green_echo(n: u64) {
    use std::io::{Read, Write};
    let l = green::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut c = green::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (s, _) = l.accept().unwrap();
    c.set_nodelay(true).unwrap();
    s.set_nodelay(true).unwrap();
    let server = green::spawn(move || {
        let mut s = s;
        let mut buf = [0u8; 4096];
        loop {
            let k = s.read(&mut buf).unwrap();
            if k == 0 {
                break;
            }
            s.write_all(&buf[..k]).unwrap();
        }
    });
    let msg = [b'x'; 32];
    let mut back = [0u8; 32];
    for _ in 0..n {
        c.write_all(black_box(&msg)).unwrap();
        c.read_exact(&mut back).unwrap();
    }
    drop(c);
    server.join().unwrap();
}

type Variant = (&'static str, fn(u64));

fn variants() -> Vec<Variant> {
    vec![
        ("corosensei_switch", corosensei_switch),
        ("generator_switch", generator_switch),
        ("corosensei_two", corosensei_two),
        ("tokio_yield", tokio_yield),
        ("may_yield", may_yield),
        // green's variants.
        ("green_switch", green_switch),
        ("green_switch_u64", green_switch_u64),
        ("green_yield", green_yield),
        ("tokio_spawn", tokio_spawn),
        ("may_spawn", may_spawn),
        ("green_spawn", green_spawn),
        ("green_echo", green_echo),
    ]
}

fn instructions(variant: &str, n: u64) -> Option<u64> {
    let exe = std::env::current_exe().ok()?;
    let out = Command::new("valgrind")
        .args(["--tool=callgrind", "--callgrind-out-file=/dev/null"])
        .arg(exe)
        .args(["--child", variant, &n.to_string()])
        .output()
        .ok()?;
    let err = String::from_utf8_lossy(&out.stderr);
    let line = err.lines().find(|l| l.contains("Collected :"))?;
    line.rsplit(':').next()?.trim().parse().ok()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() >= 4 && args[1] == "--child" {
        let n: u64 = args[3].parse().unwrap();
        let f = variants()
            .into_iter()
            .find(|v| v.0 == args[2])
            .expect("variant")
            .1;
        f(n);
        return;
    }
    if common::smoke_test() {
        // `cargo test --all-targets`: run each variant natively, briefly.
        for (name, f) in variants() {
            f(LO);
            println!("instr smoke: {name} ok");
        }
        return;
    }
    if Command::new("valgrind").arg("--version").output().is_err() {
        println!("instr: valgrind not found, skipped");
        return;
    }
    println!(
        "instr: callgrind instructions per round trip, (Ir({HI}) - Ir({LO})) / {}",
        HI - LO
    );
    let mut rows = Vec::new();
    for (k, (name, _)) in variants().iter().enumerate() {
        match (instructions(name, LO), instructions(name, HI)) {
            (Some(lo), Some(hi)) => {
                let per = (hi as f64 - lo as f64) / (HI - LO) as f64;
                println!("{name:<20} {per:>10.1} instructions");
                rows.push(common::Row {
                    case: String::new(),
                    variant: name.to_string(),
                    value: per,
                    unit: "instr".into(),
                    higher_is_better: false,
                    baseline: k == 0,
                });
            }
            _ => println!("{name:<20} failed"),
        }
    }
    common::write_results("instr", &rows);
}
