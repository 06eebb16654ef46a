//! The hub's poll hooks (`green::__net::set_poll_hooks`): set once per process; a
//! different pair is refused and the first one stays in use.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

static FIRST: AtomicUsize = AtomicUsize::new(0);
static SECOND: AtomicUsize = AtomicUsize::new(0);

fn first_before(_blocking: bool) -> Option<Instant> {
    FIRST.fetch_add(1, Ordering::SeqCst);
    None
}

fn second_before(_blocking: bool) -> Option<Instant> {
    SECOND.fetch_add(1, Ordering::SeqCst);
    None
}

fn after() {}

#[test]
fn a_second_pair_is_refused_and_the_first_stays() {
    green::__net::set_poll_hooks(first_before, after).unwrap();
    green::__net::set_poll_hooks(first_before, after).expect("the same pair again");
    let e = green::__net::set_poll_hooks(second_before, after).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::AlreadyExists);
    // A greenlet waits for another thread: the hub polls with the hooks around.
    let wait = green::__net::RemoteWait::new().unwrap();
    let waker = wait.waker();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        waker.wake();
    });
    wait.park(Some(Instant::now() + Duration::from_secs(30)))
        .unwrap();
    t.join().unwrap();
    assert!(FIRST.load(Ordering::SeqCst) > 0, "the first pair ran");
    assert_eq!(
        SECOND.load(Ordering::SeqCst),
        0,
        "the refused pair never ran"
    );
}
