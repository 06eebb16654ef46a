//! Helpers shared by the benches: CPU pinning, RSS, percentiles and the results file
//! that `scripts/bench_chart.py` turns into `docs/benchmarks.svg`.
//!
//! Each bench includes this with `#[path = "common/mod.rs"] mod common;` and uses only
//! what it needs, hence the `dead_code` allowance.
#![allow(dead_code)]

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

/// Pin the calling thread to one CPU (`sched_setaffinity(0, ..)` acts on the caller only).
/// Errors are reported and ignored: pinning is a noise reducer, not a requirement.
pub fn pin_to_cpu(cpu: usize) {
    let ncpu = std::thread::available_parallelism().map_or(1, |n| n.get());
    let cpu = cpu % ncpu.max(1);
    // SAFETY: `cpu_set_t` is plain data (all-zero is the empty set), `cpu` is below the
    // CPU count, and sched_setaffinity only reads the set we pass by reference.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            eprintln!(
                "warning: could not pin thread to cpu {cpu}: {}",
                std::io::Error::last_os_error()
            );
        }
    }
}

/// Pin the current thread to `GREEN_BENCH_CPU` (default 0). Used by the criterion benches,
/// whose measured code runs on the calling thread.
pub fn pin_from_env() {
    let cpu = std::env::var("GREEN_BENCH_CPU")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    pin_to_cpu(cpu);
}

/// Resident set size of this process in bytes, from `/proc/self/statm` (second field, pages).
pub fn rss_bytes() -> u64 {
    let s = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = s
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * page_size()
}

pub fn page_size() -> u64 {
    // SAFETY: sysconf takes a constant name and has no memory effects.
    unsafe { libc::sysconf(libc::_SC_PAGESIZE) as u64 }
}

/// Raise the soft open-file limit to the hard limit (the echo bench holds 2 fds per connection).
pub fn raise_nofile_limit() {
    // SAFETY: `rlimit` is plain data; getrlimit/setrlimit read and write only the struct
    // we pass by reference.
    unsafe {
        let mut r: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) == 0 && r.rlim_cur < r.rlim_max {
            r.rlim_cur = r.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &r);
        }
    }
}

/// Median of a slice of f64 (sorts a copy). NaN for an empty slice.
pub fn median(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    let mut v = xs.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Percentile (0..=100) of an already sorted slice, nearest-rank.
pub fn percentile_sorted<T: Copy + Default>(sorted: &[T], p: f64) -> T {
    if sorted.is_empty() {
        return T::default();
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub fn fmt_dur(d: Duration) -> String {
    let ns = d.as_nanos() as f64;
    if ns < 1e3 {
        format!("{ns:.1} ns")
    } else if ns < 1e6 {
        format!("{:.2} us", ns / 1e3)
    } else if ns < 1e9 {
        format!("{:.2} ms", ns / 1e6)
    } else {
        format!("{:.3} s", ns / 1e9)
    }
}

/// Where the harness=false benches write their results:
/// `$GREEN_BENCH_OUT`, else `<workspace root>/target/green-bench`.
pub fn results_dir() -> PathBuf {
    match std::env::var_os("GREEN_BENCH_OUT") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join("target")
            .join("green-bench"),
    }
}

/// One row of a results file. The format (TSV, one file per bench, rewritten each run):
///
/// ```text
/// # bench  case  variant  value  unit  better  baseline
/// echo     c100  tokio    81234  msg/s higher  1
/// ```
///
/// `better` is `higher` or `lower`; `baseline` is 1 on the row the others in the same
/// (bench, case) are divided by in the chart.
pub struct Row {
    pub case: String,
    pub variant: String,
    pub value: f64,
    pub unit: String,
    pub higher_is_better: bool,
    pub baseline: bool,
}

pub fn write_results(bench: &str, rows: &[Row]) {
    if smoke_test() {
        return;
    }
    let dir = results_dir();
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("warning: cannot create {}: {e}", dir.display());
        return;
    }
    let path = dir.join(format!("{bench}.tsv"));
    let mut f = match OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(&path)
    {
        Ok(f) => f,
        Err(e) => {
            eprintln!("warning: cannot write {}: {e}", path.display());
            return;
        }
    };
    let _ = writeln!(f, "# bench\tcase\tvariant\tvalue\tunit\tbetter\tbaseline");
    for r in rows {
        let _ = writeln!(
            f,
            "{bench}\t{}\t{}\t{}\t{}\t{}\t{}",
            r.case,
            r.variant,
            r.value,
            r.unit,
            if r.higher_is_better {
                "higher"
            } else {
                "lower"
            },
            r.baseline as u8
        );
    }
    eprintln!("results written to {}", path.display());
}

/// Positional (non-flag) arguments, skipping the `--bench` that `cargo bench` passes.
pub fn positional_args() -> Vec<String> {
    std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect()
}

/// `cargo bench` passes `--bench`; `cargo test --all-targets` (CI) runs the bench binaries
/// without it. The harness=false benches then do a quick smoke run with tiny sizes and
/// write no results.
pub fn smoke_test() -> bool {
    !std::env::args().any(|a| a == "--bench")
}

/// Sets up [`may`] as a single-thread peer: one worker thread, not pinned by may itself,
/// so that it inherits the CPU pinning of the thread that first uses may (threads start
/// with their creator's affinity). Call before anything else touches may: its scheduler
/// starts on first use and keeps that configuration.
pub fn may_one_worker() {
    may::config().set_workers(1);
    may::config().set_worker_pin(false);
}

/// Spawns `f` as a may coroutine.
pub fn may_spawn<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> may::coroutine::JoinHandle<T> {
    // SAFETY: may's spawn is unsafe for two reasons (its docs): a coroutine that reads
    // thread-locals may see another thread's after moving between workers, and
    // overflowing a coroutine's stack is not caught. The benches run may with one worker
    // (`may_one_worker`), so coroutines never move, and the closures they spawn use at
    // most a few KiB of stack (the largest frame is the echo handler's, with its 4 KiB
    // buffer), well below may's default 32 KiB.
    unsafe { may::coroutine::spawn(f) }
}

/// Runs `f` in a may coroutine on the worker and waits for it (the calling thread
/// blocks): what it measures, it measures on the worker, as the other peers do on their
/// thread.
pub fn may_run<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match may_spawn(f).join() {
        Ok(v) => v,
        Err(_) => panic!("a may coroutine panicked"),
    }
}
