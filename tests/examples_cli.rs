//! The examples' command lines: `--help` prints the usage and exits 0 without starting
//! anything; an unknown flag or a bad value is one line on stderr and exit code 2.
//!
//! Runs the example binaries that `cargo test` builds next to this test
//! (`target/<profile>/examples/`).

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Every example, with a bad value for one of its options (`None`: it has none).
const EXAMPLES: &[(&str, Option<&[&str]>)] = &[
    ("echo_client", Some(&["--conns", "0"])),
    ("diagnostics", Some(&["--wait", "0"])),
    ("echo_server", Some(&["--duration", "-1"])),
    ("greenlet_switch", Some(&["--steps", "ten"])),
    ("http_hello", Some(&["--sleep-ms", "-1"])),
    #[cfg(feature = "monkey")]
    ("monkey_echo_server", Some(&["--duration", "1e30"])),
    #[cfg(feature = "monkey")]
    ("monkey_patch", None),
    ("multicore_echo", Some(&["--threads", "0"])),
    ("producer_consumer", None),
    ("socket_concurrency", Some(&["--duration", "nan"])),
    ("spawn_join", None),
    ("stress", Some(&["--mix", "echo,bogus"])),
    ("sync_vs_async", None),
];

/// More bad values: a port out of range, zero counts, negative or infinite durations,
/// a missing value.
const MORE_BAD: &[(&str, &[&str])] = &[
    ("echo_server", &["--addr", "127.0.0.1:70000"]),
    ("echo_server", &["--max-conns", "0"]),
    ("http_hello", &["--max-conns", "0"]),
    ("http_hello", &["--addr", "nowhere"]),
    ("echo_client", &["--duration", "inf"]),
    ("echo_client", &["--messages", "-3"]),
    ("echo_server", &["--duration"]),
    ("stress", &["--connections", "0"]),
    ("stress", &["--duration"]),
    ("socket_concurrency", &["--conns", "1e9"]),
];

fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    // target/<profile>/deps/examples_cli-<hash> -> target/<profile>/examples/<name>
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("the test runs from target/<profile>/deps");
    let path = dir.join("examples").join(name);
    assert!(
        path.exists(),
        "{} is missing: `cargo test` builds the examples (or run `cargo build --examples`)",
        path.display()
    );
    path
}

/// Runs an example with `args`, killing it if it has not exited within 20 s.
fn run(name: &str, args: &[&str]) -> Output {
    let mut child = Command::new(example(name))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the example");
    let until = Instant::now() + Duration::from_secs(20);
    while child.try_wait().expect("try_wait").is_none() {
        if Instant::now() > until {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{name} {args:?} did not exit within 20 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().expect("the example's output")
}

/// Checks that `name args` exits 2 with nothing on stdout and one line on stderr.
fn assert_rejected(name: &str, args: &[&str]) {
    let out = run(name, args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{name} {args:?}: {stderr}");
    assert!(out.stdout.is_empty(), "{name} {args:?} printed on stdout");
    assert_eq!(stderr.lines().count(), 1, "{name} {args:?}: {stderr}");
    assert!(stderr.starts_with(name), "{name} {args:?}: {stderr}");
}

#[test]
fn help_prints_usage_and_exits_0() {
    for (name, _) in EXAMPLES {
        for flag in ["--help", "-h"] {
            let out = run(name, &[flag]);
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(out.status.success(), "{name} {flag}: {:?}", out.status);
            assert!(
                stdout.starts_with(&format!("usage: {name}")),
                "{name} {flag}: {stdout}"
            );
            assert!(out.stderr.is_empty(), "{name} {flag} wrote on stderr");
        }
    }
}

#[test]
fn unknown_flags_and_arguments_are_rejected() {
    for (name, _) in EXAMPLES {
        assert_rejected(name, &["--no-such-flag"]);
        assert_rejected(name, &["stray"]);
    }
}

#[test]
fn bad_values_are_rejected() {
    for (name, bad) in EXAMPLES {
        if let Some(args) = bad {
            assert_rejected(name, args);
        }
    }
    for (name, args) in MORE_BAD {
        assert_rejected(name, args);
    }
}
