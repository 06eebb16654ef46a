//! A watchdog for tests whose failure mode is a hang (a lost wake-up, a join that
//! never returns): shared by the test binaries of every crate of the workspace through
//! `#[path]`.
//!
//! ```ignore
//! #[path = "../../tests/support/watchdog.rs"]
//! mod watchdog;
//!
//! #[test]
//! fn a_wait_ends() {
//!     let _dog = watchdog::arm();
//!     // ... a test that would hang if the code under test lost a wake-up
//! }
//! ```

use std::io::Write;
use std::sync::mpsc;
use std::time::Duration;

/// How long a guarded test may run: far beyond what any of them takes on a loaded
/// machine.
pub const LIMIT: Duration = Duration::from_secs(60);

/// Guards the test that holds it; dropping it (the test ended, passed or panicked)
/// disarms it.
#[must_use = "the watchdog is disarmed when dropped"]
pub struct Watchdog {
    _disarm: mpsc::Sender<()>,
}

/// Arms a watchdog for the calling test: if the test still runs after [`LIMIT`], it
/// prints the test's name and aborts the test binary, so that a hang fails the run with
/// a message instead of stalling it.
pub fn arm() -> Watchdog {
    let name = std::thread::current().name().unwrap_or("a test").to_owned();
    let (disarm, disarmed) = mpsc::channel::<()>();
    std::thread::Builder::new()
        .name("test-watchdog".into())
        .spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = disarmed.recv_timeout(LIMIT) {
                // Straight to the stream: `eprintln!` is captured by the test harness,
                // and the capture is lost with the process.
                let _ = writeln!(
                    std::io::stderr(),
                    "{name}: still running after {LIMIT:?}, taken as hung: aborting"
                );
                std::process::abort();
            }
        })
        .expect("cannot start the test watchdog thread");
    Watchdog { _disarm: disarm }
}
