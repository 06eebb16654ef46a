//! Many sleeping tasks: spawn N tasks that each sleep 1 s.
//!
//! Reports, per variant: time to spawn all N, RSS growth per task (measured 200 ms after
//! the spawns, when every task has started and is parked in its sleep), and the time from
//! the first spawn until all have finished (ideal: 1 s).
//!
//! * `tokio_current_thread`: N `tokio::spawn(async { tokio::time::sleep(1s).await })`.
//! * `may`: N `may` coroutines each calling `may::coroutine::sleep(1s)`, spawned from a
//!   coroutine on may's single worker. may gives every coroutine a stack with a guard page
//!   made by `mprotect` (two kernel mappings each), so at the default `vm.max_map_count`
//!   (65530) spawning fails near 32k; its spawn then panics, and the child reports that
//!   and exits (a child that hangs is killed after a minute).
//! * `green`: N `green::spawn(|| green::sleep(1s))`.
//!
//! Every (variant, N) runs in a fresh child process (this binary re-executed with
//! `--child VARIANT N`), so RSS figures do not inherit another run's heap.
//!
//! Run: `cargo bench -p green-benches --bench scale` (N = 10_000 and 100_000), or
//! `GREEN_SCALE_N=1000000 cargo bench -p green-benches --bench scale`, or
//! `cargo bench -p green-benches --bench scale -- 1000000` (several N may be given, comma or space separated).

#[path = "common/mod.rs"]
mod common;

use common::{Row, fmt_dur, median, rss_bytes};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const SLEEP: Duration = Duration::from_secs(1);
const SETTLE: Duration = Duration::from_millis(200);

struct Measured {
    spawn: Duration,
    rss_delta: i64,
    total: Duration,
}

impl Measured {
    fn print_machine(&self) {
        println!(
            "RESULT {} {} {}",
            self.spawn.as_nanos(),
            self.rss_delta,
            self.total.as_nanos()
        );
    }
}

fn child_tokio(n: usize) -> Measured {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    rt.block_on(async move {
        let rss0 = rss_bytes() as i64;
        let t0 = Instant::now();
        let mut handles = Vec::with_capacity(n);
        for _ in 0..n {
            handles.push(tokio::spawn(async { tokio::time::sleep(SLEEP).await }));
        }
        let spawn = t0.elapsed();
        tokio::time::sleep(SETTLE).await;
        let rss_delta = rss_bytes() as i64 - rss0;
        for h in handles {
            h.await.unwrap();
        }
        Measured {
            spawn,
            rss_delta,
            total: t0.elapsed(),
        }
    })
}

// green's variant.
fn child_green(n: usize) -> Measured {
    let rss0 = rss_bytes() as i64;
    let t0 = Instant::now();
    let mut handles = Vec::with_capacity(n);
    for _ in 0..n {
        handles.push(green::spawn(|| green::sleep(SLEEP)));
    }
    let spawn = t0.elapsed();
    green::sleep(SETTLE);
    let rss_delta = rss_bytes() as i64 - rss0;
    for h in handles {
        h.join().unwrap();
    }
    Measured {
        spawn,
        rss_delta,
        total: t0.elapsed(),
    }
}

fn child_may(n: usize) -> Measured {
    common::may_one_worker();
    common::may_run(move || {
        let rss0 = rss_bytes() as i64;
        let t0 = Instant::now();
        let mut handles = Vec::with_capacity(n);
        for i in 0..n {
            let spawned =
                std::panic::catch_unwind(|| common::may_spawn(|| may::coroutine::sleep(SLEEP)));
            match spawned {
                Ok(h) => handles.push(h),
                Err(_) => {
                    // may's panic message is on stderr already.
                    eprintln!("SPAWN FAILED at coroutine {} of {n}", i + 1);
                    std::process::exit(2);
                }
            }
        }
        let spawn = t0.elapsed();
        may::coroutine::sleep(SETTLE);
        let rss_delta = rss_bytes() as i64 - rss0;
        for h in handles {
            h.join().unwrap();
        }
        Measured {
            spawn,
            rss_delta,
            total: t0.elapsed(),
        }
    })
}

fn variants() -> Vec<&'static str> {
    vec!["tokio_current_thread", "may", "green"]
}

/// How long a child may run before it is taken as hung and killed.
const CHILD_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs `cmd` to completion with its output captured, killing it after `CHILD_TIMEOUT`
/// (`None` then).
fn output_with_timeout(cmd: &mut Command) -> Option<Output> {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn a child run");
    let deadline = Instant::now() + CHILD_TIMEOUT;
    while child.try_wait().expect("wait for a child run").is_none() {
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Some(child.wait_with_output().expect("read a child run's output"))
}

/// A one-line reason for a failed child run, from its stderr.
fn failure_reason(stderr: &str) -> String {
    let mut lines = stderr.lines();
    let reason = lines
        .by_ref()
        .find(|l| l.contains("panicked at"))
        .and_then(|_| lines.next())
        .or_else(|| stderr.lines().find(|l| l.contains("SPAWN FAILED")))
        .unwrap_or("see stderr above");
    let spawned = stderr
        .lines()
        .find_map(|l| l.strip_prefix("SPAWN FAILED at "))
        .map_or(String::new(), |w| format!(" ({w})"));
    format!("{}{spawned}", reason.trim())
}

fn run_child(variant: &str, n: usize) -> Measured {
    common::pin_from_env();
    match variant {
        "tokio_current_thread" => child_tokio(n),
        "green" => child_green(n),
        "may" => child_may(n),
        other => panic!("unknown variant {other}"),
    }
}

/// The chart's rows of one variant at `n`: [ns per spawn, resident bytes per task,
/// seconds until all were done] (NaN for a run that failed).
fn push_rows(rows: &mut Vec<Row>, n: usize, variant: &str, baseline: bool, values: [f64; 3]) {
    let what = [("spawn", "ns/spawn"), ("rss", "B/task"), ("total", "s")];
    for ((case, unit), value) in what.into_iter().zip(values) {
        rows.push(Row {
            case: format!("n{n}_{case}"),
            variant: variant.to_string(),
            value,
            unit: unit.into(),
            higher_is_better: false,
            baseline,
        });
    }
}

fn parse_n(s: &str) -> Option<usize> {
    let s = s.replace('_', "").to_ascii_lowercase();
    if let Some(k) = s.strip_suffix('k') {
        k.parse::<usize>().ok().map(|x| x * 1_000)
    } else if let Some(m) = s.strip_suffix('m') {
        m.parse::<usize>().ok().map(|x| x * 1_000_000)
    } else {
        s.parse().ok()
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() >= 4 && args[1] == "--child" {
        let n = parse_n(&args[3]).expect("N");
        run_child(&args[2], n).print_machine();
        return;
    }

    let mut ns: Vec<usize> = common::positional_args()
        .iter()
        .chain(std::env::var("GREEN_SCALE_N").ok().iter())
        .flat_map(|s| s.split([',', ' ']).map(str::to_string).collect::<Vec<_>>())
        .filter_map(|s| parse_n(&s))
        .collect();
    if ns.is_empty() {
        ns = vec![10_000, 100_000];
    }
    let rounds: usize = std::env::var("GREEN_SCALE_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    // `cargo test --all-targets`: a quick smoke run.
    let (ns, rounds) = if common::smoke_test() {
        (vec![1_000], 1)
    } else {
        (ns, rounds)
    };
    let exe = std::env::current_exe().unwrap();

    println!(
        "scale: N tasks each sleeping {SLEEP:?}; {rounds} round(s), variants interleaved, medians"
    );
    println!(
        "{:>9} {:<22} {:>11} {:>10} {:>11} {:>10} {:>9}",
        "N", "variant", "spawn all", "per spawn", "RSS/task", "all done", "overshoot"
    );
    let mut rows = Vec::new();
    for &n in &ns {
        let vs = variants();
        let mut res: Vec<Vec<Measured>> = (0..vs.len()).map(|_| Vec::new()).collect();
        let mut failed: Vec<Option<String>> = vec![None; vs.len()];
        for _ in 0..rounds {
            for (k, v) in vs.iter().enumerate() {
                let Some(out) =
                    output_with_timeout(Command::new(&exe).args(["--child", v, &n.to_string()]))
                else {
                    eprintln!("{v} N={n}: no result after {CHILD_TIMEOUT:?}, killed");
                    failed[k] = Some(format!("hung, killed after {CHILD_TIMEOUT:?}"));
                    continue;
                };
                let stdout = String::from_utf8_lossy(&out.stdout);
                let line = stdout.lines().find(|l| l.starts_with("RESULT "));
                match (out.status.success(), line) {
                    (true, Some(line)) => {
                        let f: Vec<i128> =
                            line[7..].split(' ').map(|x| x.parse().unwrap()).collect();
                        res[k].push(Measured {
                            spawn: Duration::from_nanos(f[0] as u64),
                            rss_delta: f[1] as i64,
                            total: Duration::from_nanos(f[2] as u64),
                        });
                    }
                    _ => {
                        let stderr = String::from_utf8_lossy(&out.stderr);
                        eprintln!("{v} N={n} failed: {}\n{stderr}", out.status);
                        failed[k] = Some(failure_reason(&stderr));
                    }
                }
            }
        }
        for (k, v) in vs.iter().enumerate() {
            if res[k].is_empty() {
                let why = failed[k].as_deref().unwrap_or("no run");
                println!("{n:>9} {v:<22} FAILED: {why}");
                // NaN marks a failed run for the chart (drawn as "failed", no bar).
                push_rows(&mut rows, n, v, k == 0, [f64::NAN; 3]);
                continue;
            }
            let spawn = median(
                &res[k]
                    .iter()
                    .map(|m| m.spawn.as_secs_f64())
                    .collect::<Vec<_>>(),
            );
            let rss = median(
                &res[k]
                    .iter()
                    .map(|m| m.rss_delta as f64)
                    .collect::<Vec<_>>(),
            );
            let total = median(
                &res[k]
                    .iter()
                    .map(|m| m.total.as_secs_f64())
                    .collect::<Vec<_>>(),
            );
            println!(
                "{:>9} {:<22} {:>11} {:>10} {:>9.0} B {:>10} {:>9}",
                n,
                v,
                fmt_dur(Duration::from_secs_f64(spawn)),
                fmt_dur(Duration::from_secs_f64(spawn / n as f64)),
                rss / n as f64,
                fmt_dur(Duration::from_secs_f64(total)),
                fmt_dur(Duration::from_secs_f64(
                    (total - SLEEP.as_secs_f64()).max(0.0)
                )),
            );
            let per_task = [spawn / n as f64 * 1e9, rss / n as f64, total];
            push_rows(&mut rows, n, v, k == 0, per_task);
        }
    }
    common::write_results("scale", &rows);
}
