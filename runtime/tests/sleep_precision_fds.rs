//! Short sleeps while the process is out of fds: the timerfd that makes them precise
//! cannot be made, they end up to 1 ms late instead of failing, and precision comes
//! back once fds are free. Its own test binary: it uses up the process's fds.

use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

#[path = "../../tests/support/sleep_timing.rs"]
mod sleep_timing;
use sleep_timing::fastest_sleep;

#[test]
fn short_sleeps_survive_fd_exhaustion_and_are_precise_again_after() {
    // Make the hub and its reactor with a sleep too long for the timerfd.
    green::sleep(Duration::from_millis(150));
    let null = std::fs::File::open("/dev/null").unwrap();
    let mut held: Vec<OwnedFd> = Vec::new();
    loop {
        match null.try_clone() {
            Ok(f) => held.push(f.into()),
            Err(e) => {
                assert_eq!(e.raw_os_error(), Some(libc::EMFILE), "{e}");
                break;
            }
        }
        assert!(held.len() < 1 << 20, "no fd limit to reach");
    }
    let d = Duration::from_micros(1200);
    let t = Instant::now();
    for _ in 0..5 {
        green::sleep(d);
    }
    assert!(t.elapsed() >= d * 5);
    drop(held);
    let fastest = fastest_sleep(d, 50);
    assert!(fastest >= d, "woke early: {fastest:?}");
    assert!(
        fastest < Duration::from_micros(1900),
        "rounded up: {fastest:?}"
    );
}
