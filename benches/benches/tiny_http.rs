//! tiny_http (a thread-pool HTTP server whose `recv()` waits on a `Condvar`) under
//! `wrk -t1 -c100`, its requests handled three ways:
//!
//! * `greenlets`: after `green::monkey::patch_all()`, one greenlet `recv()`s and spawns
//!   a greenlet per request (the gevent way), all on one thread;
//! * `threads_100`: 100 OS threads each `recv()` and handle (a thread per connection);
//! * `threads_4`: 4 such threads.
//!
//! Two handlers: `immediate` (answers at once) and `sleep10ms` (`thread::sleep` of 10 ms
//! before answering: patched, it parks the greenlet). tiny_http's own threads (its
//! acceptor and one reader per connection) are the same in all three.
//!
//! Run: `cargo bench -p green-benches --bench tiny_http` (needs `wrk` on the PATH;
//! seconds per run: `GREEN_TINY_HTTP_SECS`, default 5; rounds: `GREEN_TINY_HTTP_ROUNDS`,
//! default 3, interleaved; medians with min–max; `GREEN_TINY_HTTP_ONLY` and
//! `GREEN_TINY_HTTP_CASES` take comma-separated names to run only some).

#[path = "common/mod.rs"]
mod common;

use common::{Row, median};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

#[derive(Clone, Copy)]
enum Mode {
    Greenlets,
    Threads(usize),
}

fn respond(req: tiny_http::Request, delay: Duration) {
    if !delay.is_zero() {
        thread::sleep(delay);
    }
    let _ = req.respond(tiny_http::Response::from_string("ok"));
}

/// Runs `load` against a server in `mode`; returns what `load` returned.
fn serve<R: Send + 'static>(
    mode: Mode,
    delay: Duration,
    load: impl FnOnce(SocketAddr) -> R + Send + 'static,
) -> R {
    let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind"));
    let addr = server.server_addr().to_ip().expect("ip address");
    match mode {
        Mode::Greenlets => {
            let s = server.clone();
            let dispatcher = green::spawn(move || {
                while let Ok(req) = s.recv() {
                    green::spawn(move || respond(req, delay));
                }
            });
            // The load runs on its own thread; joining it parks this greenlet.
            let r = thread::spawn(move || load(addr)).join().expect("load");
            server.unblock();
            let _ = dispatcher.join();
            r
        }
        Mode::Threads(n) => {
            let handlers: Vec<_> = (0..n)
                .map(|_| {
                    let s = server.clone();
                    thread::spawn(move || {
                        while let Ok(req) = s.recv() {
                            respond(req, delay);
                        }
                    })
                })
                .collect();
            let r = load(addr);
            for _ in 0..n {
                server.unblock();
            }
            for h in handlers {
                let _ = h.join();
            }
            r
        }
    }
}

/// `wrk -t1 -c100 -d<secs>s`: requests per second and the latency line.
fn wrk(addr: SocketAddr, secs: u64) -> Option<(f64, String)> {
    let out = Command::new("wrk")
        .args([
            "-t1",
            "-c100",
            &format!("-d{secs}s"),
            &format!("http://{addr}/"),
        ])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let rps = text
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))?
        .trim()
        .parse()
        .ok()?;
    let latency = text
        .lines()
        .find(|l| l.trim_start().starts_with("Latency"))
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .collect::<Vec<_>>()
        .join(" ");
    Some((rps, latency))
}

/// One request with a std client (the smoke run, without wrk).
fn one_get(addr: SocketAddr) -> bool {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return false;
    };
    let _ = write!(s, "GET / HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.ends_with("ok")
}

fn main() {
    green::monkey::patch_all();
    let modes = [
        ("greenlets", Mode::Greenlets),
        ("threads_100", Mode::Threads(100)),
        ("threads_4", Mode::Threads(4)),
    ];
    let cases = [
        ("immediate", Duration::ZERO),
        ("sleep10ms", Duration::from_millis(10)),
    ];
    if common::smoke_test() {
        for (name, mode) in modes {
            for (case, delay) in cases {
                assert!(serve(mode, delay, one_get), "{name} {case}");
                println!("tiny_http smoke: {name} {case} ok");
            }
        }
        return;
    }
    if Command::new("wrk").arg("--version").output().is_err() {
        println!("tiny_http: wrk not found, skipped");
        return;
    }
    let env = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(d)
    };
    // Optional filters: GREEN_TINY_HTTP_ONLY=greenlets,threads_4 and
    // GREEN_TINY_HTTP_CASES=sleep10ms.
    let only = |var: &str, name: &str| {
        std::env::var(var).map_or(true, |v| v.split(',').any(|x| x == name))
    };
    let modes: Vec<_> = modes
        .into_iter()
        .filter(|(n, _)| only("GREEN_TINY_HTTP_ONLY", n))
        .collect();
    let cases: Vec<_> = cases
        .into_iter()
        .filter(|(n, _)| only("GREEN_TINY_HTTP_CASES", n))
        .collect();
    let secs = env("GREEN_TINY_HTTP_SECS", 5);
    let rounds = env("GREEN_TINY_HTTP_ROUNDS", 3) as usize;
    println!("tiny_http: wrk -t1 -c100 -d{secs}s, requests/s, median of {rounds} [min - max]");
    let mut rows = Vec::new();
    for &(case, delay) in &cases {
        let mut samples = vec![Vec::new(); modes.len()];
        let mut latency = vec![String::new(); modes.len()];
        for _ in 0..rounds {
            for (k, (_, mode)) in modes.iter().enumerate() {
                if let Some((rps, lat)) = serve(*mode, delay, move |a| wrk(a, secs)) {
                    samples[k].push(rps);
                    latency[k] = lat;
                }
            }
        }
        for (k, (name, _)) in modes.iter().enumerate() {
            let s = &samples[k];
            let min = s.iter().cloned().fold(f64::INFINITY, f64::min);
            let max = s.iter().cloned().fold(0.0, f64::max);
            let med = median(s);
            println!(
                "{case:<10} {name:<12} {med:>10.0} req/s  [{min:.0} - {max:.0}]  latency (last): {}",
                latency[k]
            );
            rows.push(Row {
                case: case.to_string(),
                variant: name.to_string(),
                value: med,
                unit: "req/s".into(),
                higher_is_better: true,
                baseline: k == 0,
            });
        }
    }
    common::write_results("tiny_http", &rows);
}
