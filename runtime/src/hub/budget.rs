//! The fairness budget: a greenlet whose socket operations keep succeeding lets the
//! other greenlets of its hub run.
//!
//! A greenlet switches only when it waits. One whose every read and write succeeds (a
//! peer that sends and reads flat out) would otherwise keep its thread for as long as
//! the peer keeps up, and every other greenlet of the hub, timers included, would stop.
//! So the socket layers (`green::net` and the monkey patch's hooks) call
//! [`spend_budget`] before each socket operation of a greenlet. The operations a
//! greenlet makes without parking or yielding in between are counted; once it has made
//! [`BUDGET`] of them, or has gone on for [`SLICE`], the next one gives the others a
//! turn first: the greenlet parks until the hub's next poll of timers and IO, so that
//! greenlets whose timers are due or whose sockets became ready run before it goes on
//! (tokio defers a task whose budget ran out until its driver has polled in the same
//! way). The turn is given before the operation, not after it, so that a kill or a
//! timeout raised in the greenlet while it waits never throws away the result of an
//! operation that already succeeded.
//!
//! Counting costs one store per park (or yield): each greenlet's record holds the
//! operations left before its next check (`Record::budget`), which restarts wherever its
//! park number advances ([`restart`]); an operation only decrements it. The checks, one
//! every [`CHECK`] operations of a greenlet that does not wait, keep their state in a
//! thread-local, tied to the greenlet and its park number, and read the clock; a
//! greenlet that waits now and then (as an echo server answering requests does) never
//! reaches one.

use std::cell::Cell;
use std::time::{Duration, Instant};

use crate::greenlet::record::ParkLabel;
use crate::greenlet::record::Record;
use crate::greenlet::thread;
use crate::hub::{park, try_with_hub};

/// The most socket operations a greenlet makes in a row without waiting before it
/// gives the others a turn.
pub(crate) const BUDGET: u32 = 128;

/// How long a greenlet may go on making socket operations without waiting before it
/// gives the others a turn (give or take [`CHECK`] operations).
///
/// A count of operations alone bounds the wait of the other greenlets only as well as
/// the operations are short: echoing over loopback TCP takes about 20 µs per operation
/// with 64 KiB buffers but about 250 µs with 1 MiB ones, so 128 of the latter would
/// hold the hub for 30 ms. So the count goes with a time slice: the clock is read every
/// [`CHECK`] operations, and the turn comes after [`BUDGET`] operations or once `SLICE`
/// has passed since the first reading, whichever is first. Short operations (small
/// messages, a microsecond or a few each) reach the count first, so a busy greenlet
/// pays for its turn (a park through a timer and a poll of the reactor: about a
/// microsecond or two) once every 128 operations, around 1% of their own cost; big ones
/// reach the slice. Beside a flat-out echo (`net/tests/fairness.rs`) a 1 ms ticker
/// greenlet ticks every 1.3–1.4 ms on average with 64 KiB reads, every 2–3 ms with
/// 1 MiB ones (its widest gaps: 6 ms and 10 ms). A greenlet that waits now and then
/// starts a new count at each wait and never pays at all.
pub(crate) const SLICE: Duration = Duration::from_millis(1);

/// How many operations pass between two checks (of the count and the clock).
pub(crate) const CHECK: u16 = 8;

/// The state of the checks of the hub's current count (a field of the hub): the
/// greenlet whose operations are counted and its park number, the checks made and when
/// the first was.
pub(crate) struct Checks {
    /// A dangling, never-current address until the first check.
    g: Cell<*const Record>,
    seq: Cell<u64>,
    made: Cell<u32>,
    since: Cell<Option<Instant>>,
}

impl Default for Checks {
    fn default() -> Checks {
        Checks {
            g: Cell::new(std::ptr::dangling()),
            seq: Cell::new(0),
            made: Cell::new(0),
            since: Cell::new(None),
        }
    }
}

/// Starts a new count for `g`, whose park number just advanced (a park ended, or it
/// yielded).
#[inline(always)]
pub(crate) fn restart(g: &Record) {
    g.core.budget.set(CHECK);
}

/// Counts a socket operation of the calling greenlet, giving the other greenlets of its
/// hub a turn first when it has been making operations for a while (see [`BUDGET`] and
/// [`SLICE`]) without parking or yielding. Internal: `green::net` and the monkey patch
/// call it before each socket operation; it is public only for them and is not part of
/// the API.
///
/// A kill or a timeout raised in the greenlet during its turn unwinds from here (the
/// monkey patch catches it, as for any park inside a hook). Outside a hub (a plain
/// thread) and in the hub itself (a timer callback) it does nothing.
///
/// # Examples
///
/// A greenlet whose operations never wait still lets another one run:
///
/// ```
/// use std::{cell::Cell, rc::Rc};
/// let ran = Rc::new(Cell::new(false));
/// let r = ran.clone();
/// let busy = green::spawn(move || {
///     let mut n = 0;
///     while !r.get() {
///         green::__net::spend_budget(); // as a socket operation that succeeds would
///         n += 1;
///     }
///     n
/// });
/// let other = green::spawn(move || ran.set(true));
/// assert!(busy.join().unwrap() <= 1000);
/// other.join().unwrap();
/// ```
#[doc(hidden)]
#[inline]
pub fn spend_budget() {
    let g = thread::current_ptr();
    if g.is_null() {
        // `green` is not used on this thread: nothing else to let run.
        return;
    }
    // SAFETY: a non-null current greenlet is alive while it runs (`thread::Hot`).
    let g = unsafe { &*g };
    let left = g.core.budget.get();
    if left != 0 {
        g.core.budget.set(left - 1);
    } else {
        check(g);
    }
}

/// A check, once every [`CHECK`] operations of a count: gives a turn when one is due,
/// and starts the next [`CHECK`] operations, of which this one is the first.
#[cold]
#[inline(never)]
fn check(g: &Record) {
    if !thread::in_scheduler() && turn_is_due(g) {
        // Park until the hub's next poll of timers and IO (a timer due at once). The
        // park advances the greenlet's park number: a new count starts.
        let _ = park::park_as(Some(Instant::now()), ParkLabel::new("its turn (fairness)"));
    }
    g.core.budget.set(CHECK - 1);
}

/// Whether `g`'s count has reached [`BUDGET`] operations or [`SLICE`]. The first check
/// of a count only notes the time.
fn turn_is_due(g: &Record) -> bool {
    let seq = g.core.park_seq.get();
    let now = Instant::now();
    try_with_hub(|h| {
        let c = &h.budget;
        if !std::ptr::eq(c.g.get(), g) || c.seq.get() != seq {
            c.g.set(g);
            c.seq.set(seq);
            c.made.set(1);
            c.since.set(Some(now));
            return false;
        }
        let made = c.made.get() + 1;
        c.made.set(made);
        made * u32::from(CHECK) >= BUDGET
            || c.since
                .get()
                .is_none_or(|since| now.duration_since(since) >= SLICE)
    })
    .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::{BUDGET, SLICE};
    use crate::api::spawn::spawn;
    use std::cell::Cell;
    use std::rc::Rc;
    use std::time::Duration;

    /// Counts operations, each taking `each` of the thread's time, until `flag` is
    /// set; returns how many were counted.
    fn spend_until(flag: Rc<Cell<bool>>, each: Duration) -> u32 {
        let mut n = 0;
        while !flag.get() {
            super::spend_budget();
            if !each.is_zero() {
                std::thread::sleep(each);
            }
            n += 1;
            assert!(n < 100 * BUDGET, "the other greenlet never ran");
        }
        n
    }

    /// The other greenlet runs at the busy one's first turn, which comes at the
    /// operation after its budget, or sooner (at a check, every `CHECK` operations
    /// from the second on) if the thread was held up for a whole `SLICE` meanwhile.
    fn first_turn_ok(n: u32) -> bool {
        (2 * CHECK + 1..=BUDGET + 1).contains(&n) && n % CHECK == 1
    }

    const CHECK: u32 = super::CHECK as u32;

    /// Runs a busy greenlet whose operations take `each`, beside one that only sets a
    /// flag; returns the number of the busy greenlet's operation that let it run.
    fn first_turn(each: Duration) -> u32 {
        let ran = Rc::new(Cell::new(false));
        let r = ran.clone();
        let busy = spawn(move || spend_until(ran, each));
        let other = spawn(move || r.set(true));
        let n = busy.join().unwrap();
        other.join().unwrap();
        n
    }

    #[test]
    fn a_greenlet_that_never_waits_gives_a_turn_after_its_budget() {
        let n = first_turn(Duration::ZERO);
        assert!(first_turn_ok(n), "{n}");
    }

    #[test]
    fn a_wait_starts_a_new_count() {
        let ran = Rc::new(Cell::new(false));
        let r = ran.clone();
        let busy = spawn(move || {
            for _ in 0..BUDGET - 1 {
                super::spend_budget();
            }
            // A yield ends the count: another whole one follows.
            crate::hub::time::yield_now();
            spend_until(ran, Duration::ZERO)
        });
        let other = spawn(move || {
            // Runs at the busy greenlet's yield; sets the flag on its next turn.
            crate::hub::time::yield_now();
            r.set(true);
        });
        let n = busy.join().unwrap();
        assert!(first_turn_ok(n), "{n}");
        other.join().unwrap();
    }

    #[test]
    fn slow_operations_give_a_turn_after_the_slice() {
        // Each operation takes an eighth of the slice, or more: the second check (one
        // slice after the first) finds the slice over.
        assert_eq!(first_turn(SLICE / CHECK), 2 * CHECK + 1);
    }

    #[test]
    fn outside_greenlets_it_does_nothing() {
        // A plain thread without a hub: nothing to give a turn to, nothing panics.
        std::thread::spawn(|| {
            for _ in 0..3 * BUDGET {
                super::spend_budget();
            }
        })
        .join()
        .unwrap();
    }
}
