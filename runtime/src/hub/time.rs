//! Sleeping and yielding: gevent's `sleep(seconds)` and `sleep(0)`.

use std::time::{Duration, Instant};

use crate::greenlet::record::ParkLabel;
use crate::greenlet::thread;
use crate::hub::park::{Wake, park_as, yield_here};
use crate::hub::{in_hub_panic, timer};

/// Suspends the current greenlet for `dur`, running other greenlets meanwhile
/// (gevent's `gevent.sleep`). `sleep(Duration::ZERO)` is [`yield_now`].
///
/// It never ends early. When nothing else keeps the hub busy, a sleep under 100 ms
/// ends a fraction of a millisecond after `dur` (the hub's wait ends on a timerfd: 10 ms
/// took 10.16 ms, median of 200 on an idle machine), a longer one within about a
/// millisecond (epoll's whole-millisecond timeout).
///
/// # Panics
///
/// When called from the hub itself (a timer callback or a link), which must not wait
/// or switch: the hub catches the panic and logs it ("green: sleep: cannot block in the
/// hub: ..."), and the rest of the callback does not run. Spawn a greenlet to sleep.
///
/// # Examples
///
/// A sleeping greenlet lets the others run: the second greenlet finishes while the
/// first one sleeps.
///
/// ```
/// use std::{cell::RefCell, rc::Rc, time::Duration};
/// let done = Rc::new(RefCell::new(Vec::new()));
/// let (d1, d2) = (done.clone(), done.clone());
/// let sleeper = green::spawn(move || {
///     green::sleep(Duration::from_millis(100));
///     d1.borrow_mut().push("slept");
/// });
/// let other = green::spawn(move || d2.borrow_mut().push("ran"));
/// green::joinall(vec![sleeper, other]);
/// assert_eq!(*done.borrow(), ["ran", "slept"]);
/// ```
pub fn sleep(dur: Duration) {
    if dur.is_zero() {
        if thread::in_scheduler() {
            in_hub_panic("sleep");
        }
        return yield_now();
    }
    sleep_until(timer::deadline_after(dur));
}

/// Suspends the current greenlet until `deadline` (see [`sleep`]).
///
/// # Panics
///
/// When called from the hub (see [`sleep`]).
///
/// ```
/// let until = std::time::Instant::now() + std::time::Duration::from_millis(5);
/// green::sleep_until(until);
/// assert!(std::time::Instant::now() >= until);
/// ```
pub fn sleep_until(deadline: Instant) {
    if thread::in_scheduler() {
        in_hub_panic("sleep");
    }
    // A spurious wake (an explicit switch into a sleeping greenlet) sleeps again.
    while Instant::now() < deadline {
        if let Ok(Wake::TimedOut) | Err(_) = park_as(Some(deadline), ParkLabel::new("sleep")) {
            break;
        }
    }
}

/// Lets every other ready greenlet run once, then continues (gevent's `sleep(0)`).
///
/// # Panics
///
/// When called from the hub (a timer callback or a link), as [`sleep`] does.
///
/// # Examples
///
/// Two greenlets that yield between steps interleave: "1A 2A 1B 2B".
///
/// ```
/// use std::{cell::RefCell, rc::Rc};
/// let out = Rc::new(RefCell::new(Vec::new()));
/// let hs: Vec<_> = [1, 2].into_iter().map(|n| {
///     let out = out.clone();
///     green::spawn(move || {
///         out.borrow_mut().push(format!("{n}A"));
///         green::yield_now();
///         out.borrow_mut().push(format!("{n}B"));
///     })
/// }).collect();
/// green::joinall(hs);
/// assert_eq!(*out.borrow(), ["1A", "2A", "1B", "2B"]);
/// ```
#[inline(always)]
pub fn yield_now() {
    if thread::in_scheduler() {
        in_hub_panic("yield_now");
    }
    yield_here();
}
