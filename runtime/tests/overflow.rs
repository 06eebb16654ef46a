//! A real greenlet overflowing its stack is named in the report (end to end: the
//! overflow handler finds the running greenlet through the hub's current greenlet).
//!
//! The overflow aborts the process, so the test re-runs itself as a child.

use std::hint::black_box;
use std::os::unix::process::ExitStatusExt;
use std::process::Command;

const CHILD_ENV: &str = "GREEN_OVERFLOW_TEST_CHILD";

fn recurse(depth: u64) -> u64 {
    let frame = black_box([depth as u8; 512]);
    if black_box(depth) == u64::MAX {
        return 0;
    }
    recurse(depth + 1) + frame[black_box(7)] as u64
}

#[test]
#[ignore = "child process of spawned_greenlet_overflow_is_named"]
fn overflow_child() {
    if std::env::var(CHILD_ENV).is_err() {
        return;
    }
    // No core dump from the crash provoked on purpose.
    let no_core = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: setrlimit only reads the struct.
    unsafe { libc::setrlimit(libc::RLIMIT_CORE, &no_core) };
    // Switch around first, so that the overflowing greenlet is not the first one run.
    let other = green::spawn(green::yield_now);
    let h = green::Builder::new()
        .name("deep")
        .stack_size(32 * 1024)
        .spawn(|| {
            green::yield_now();
            recurse(0)
        })
        .unwrap();
    other.join().unwrap();
    let _ = h.join();
    println!("CHILD-SURVIVED");
}

#[test]
fn spawned_greenlet_overflow_is_named() {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "overflow_child",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGABRT),
        "{stdout}\n{stderr}"
    );
    assert!(
        stderr.contains("\"deep\" overflowed its stack")
            && stderr.contains("green::Builder::stack_size"),
        "{stderr}"
    );
    assert!(!stdout.contains("CHILD-SURVIVED"));
}
