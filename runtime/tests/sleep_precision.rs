//! Short sleeps end at their deadline, not at the next whole millisecond that epoll's
//! timeout can express.

use std::time::{Duration, Instant};

#[path = "../../tests/support/sleep_timing.rs"]
mod sleep_timing;
use sleep_timing::fastest_sleep;

#[test]
fn short_sleeps_are_not_rounded_up_to_whole_milliseconds() {
    // A poll whose timeout is rounded up to whole milliseconds never ends a 1.2 ms
    // sleep before 2 ms; the fastest of 50 tells the two apart on a loaded machine too.
    let d = Duration::from_micros(1200);
    let fastest = fastest_sleep(d, 50);
    assert!(fastest >= d, "woke early: {fastest:?}");
    assert!(
        fastest < Duration::from_micros(1900),
        "rounded up: {fastest:?}"
    );
}

#[test]
fn short_sleeps_in_greenlets_are_not_rounded_up_either() {
    let d = Duration::from_micros(2500);
    let hs: Vec<_> = (0..4)
        .map(|_| green::spawn(move || fastest_sleep(d, 20)))
        .collect();
    for h in hs {
        let fastest = h.join().unwrap();
        assert!(fastest >= d, "woke early: {fastest:?}");
        assert!(
            fastest < Duration::from_micros(2950),
            "rounded up: {fastest:?}"
        );
    }
}

#[test]
fn long_sleeps_still_end_after_their_deadline() {
    let d = Duration::from_millis(120); // beyond the timerfd's range: epoll's own timeout
    let t = Instant::now();
    green::sleep(d);
    assert!(t.elapsed() >= d);
}
