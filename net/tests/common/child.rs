//! Running one test of the current test binary in a child process: for a test that
//! changes something process-wide (the fd limit, the monkey patch) or that may hang the
//! thread it runs on (a hub that spins), without touching the other tests.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Set in the child: the test body runs there.
const CHILD_VAR: &str = "GREEN_TEST_CHILD";

/// Whether this process is the child that `run` started for `test`.
pub fn is_child(test: &str) -> bool {
    std::env::var(CHILD_VAR).is_ok_and(|v| v == test)
}

/// Runs the test `test` (its full path in the test binary, as `cargo test` names it)
/// in a child process and returns its output, stdout then stderr. Panics if it fails,
/// or if it has not finished after `limit` (then it is killed): a hub that spins never
/// lets the test body finish.
pub fn run(test: &str, limit: Duration) -> String {
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut child = Command::new(exe)
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_VAR, test)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the child");
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the child") {
            break Some(status);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = child.wait_with_output().expect("the child's output");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    match status {
        Some(s) if s.success() => text,
        Some(s) => panic!("the child running {test} failed ({s}):\n{text}"),
        None => panic!("the child running {test} did not finish in {limit:?}:\n{text}"),
    }
}
