//! Timers: where a sleeping greenlet wakes up.
//!
//! The hub keeps its deadlines in two queues. Most timers are armed in deadline order
//! (one timeout length, armed as time goes on: every sleep of a crowd of greenlets,
//! every read timeout of a server): those go at the back of a sorted run, a deque, in
//! O(1), and leave from its front in O(1). A timer due before the run's last one goes to
//! a binary heap instead. The earliest timer is the earlier of the two fronts, ordered by
//! deadline and then by arming order. Cancelling is lazy: the entry stays and is skipped
//! when it surfaces (its slab slot is gone or reused with another sequence number); both
//! queues are rebuilt when stale entries outnumber live ones, so a loop of cancelled
//! timeouts does not grow memory.
//!
//! Due timers fire when the hub runs out of ready greenlets, and every few dozen
//! scheduling ticks while greenlets are ready, so a busy loop of `yield_now` cannot
//! starve a sleeper.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::time::{Duration, Instant};

use slab::Slab;

use crate::greenlet::Greenlet;
use crate::greenlet::trampoline;
use crate::hub::park::{Unparker, Wake};
use crate::hub::{Hub, try_with_hub, with_hub};

/// What happens when a timer fires.
pub(crate) enum Action {
    /// End a park with [`Wake::TimedOut`].
    Timeout(Unparker),
    /// Start a greenlet (`spawn_later`).
    Start(Greenlet),
    /// Run a callback in the hub.
    Call(Box<dyn FnOnce()>),
}

/// Identifies an armed timer, to cancel it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Key {
    slot: usize,
    seq: u64,
}

/// A queued timer: (deadline, sequence number, slab slot); ordered by deadline, then by
/// arming order.
type Entry = (Instant, u64, usize);

pub(crate) struct Timers {
    /// Timers armed no earlier than the last one in it, in arming order: sorted.
    run: VecDeque<Entry>,
    /// The others.
    heap: BinaryHeap<Reverse<Entry>>,
    slots: Slab<(u64, Action)>,
    next_seq: u64,
}

impl Timers {
    pub(crate) fn new() -> Timers {
        Timers {
            run: VecDeque::new(),
            heap: BinaryHeap::new(),
            slots: Slab::new(),
            next_seq: 0,
        }
    }

    fn add(&mut self, deadline: Instant, action: Action) -> Key {
        let seq = self.next_seq;
        self.next_seq += 1;
        let slot = self.slots.insert((seq, action));
        if self.run.back().is_none_or(|last| deadline >= last.0) {
            self.run.push_back((deadline, seq, slot));
        } else {
            self.heap.push(Reverse((deadline, seq, slot)));
        }
        Key { slot, seq }
    }

    fn cancel(&mut self, key: Key) -> Option<Action> {
        if !is_live(&self.slots, key.seq, key.slot) {
            return None;
        }
        let (_, action) = self.slots.remove(key.slot);
        let queued = self.run.len() + self.heap.len();
        if queued > 64 && queued > 2 * self.slots.len() {
            let slots = &self.slots;
            self.run.retain(|&(_, seq, slot)| is_live(slots, seq, slot));
            self.heap
                .retain(|Reverse((_, seq, slot))| is_live(slots, *seq, *slot));
        }
        Some(action)
    }

    /// Whether no timer is armed. Cancelled ones may still be queued: they are skipped
    /// when they surface, and there are never more than 64 or twice the armed ones.
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The earliest queued entry, live or stale, and whether it is the run's.
    #[inline]
    fn first(&self) -> Option<(Entry, bool)> {
        match (self.run.front(), self.heap.peek()) {
            (Some(r), Some(Reverse(h))) if h < r => Some((*h, false)),
            (Some(r), _) => Some((*r, true)),
            (None, Some(Reverse(h))) => Some((*h, false)),
            (None, None) => None,
        }
    }

    /// Drops the entry [`first`](Self::first) returned.
    #[inline]
    fn drop_first(&mut self, in_run: bool) {
        if in_run {
            self.run.pop_front();
        } else {
            self.heap.pop();
        }
    }

    /// The earliest live deadline (dropping stale entries on the way).
    pub(crate) fn next_deadline(&mut self) -> Option<Instant> {
        while let Some(((when, seq, slot), in_run)) = self.first() {
            if is_live(&self.slots, seq, slot) {
                return Some(when);
            }
            self.drop_first(in_run);
        }
        None
    }

    fn pop_due(&mut self, now: Instant) -> Option<Action> {
        loop {
            let ((when, seq, slot), in_run) = self.first()?;
            if !is_live(&self.slots, seq, slot) {
                self.drop_first(in_run);
                continue;
            }
            if when > now {
                return None;
            }
            self.drop_first(in_run);
            return Some(self.slots.remove(slot).1);
        }
    }
}

/// Whether the queued entry (`seq`, `slot`) is still armed: its slab slot holds the
/// timer it was queued for (not emptied by a cancel or a firing, nor reused).
fn is_live(slots: &Slab<(u64, Action)>, seq: u64, slot: usize) -> bool {
    slots.get(slot).is_some_and(|(s, _)| *s == seq)
}

/// Arms a timer on this thread's hub.
pub(crate) fn add(deadline: Instant, action: Action) -> Key {
    with_hub(|h| h.timers.borrow_mut().add(deadline, action))
}

/// Disarms a timer (no-op if it fired already).
pub(crate) fn cancel(key: Key) -> bool {
    // Drop the action outside the borrow: it may hold the last handle of a greenlet.
    let action = try_with_hub(|h| h.timers.borrow_mut().cancel(key)).flatten();
    action.is_some()
}

/// Fires every timer due at `now`.
pub(crate) fn fire_due(h: &Hub, now: Instant) {
    loop {
        let action = h.timers.borrow_mut().pop_due(now);
        let Some(action) = action else { return };
        match action {
            Action::Timeout(u) => {
                u.wake(Wake::TimedOut);
            }
            Action::Start(g) => {
                // (A greenlet started early, by a switch, has disarmed this timer: see
                // `run::started_early`.)
                h.start_due(&g);
            }
            Action::Call(f) => {
                trampoline::run_callback(f);
            }
        }
    }
}

/// A callback armed with [`call_at`] or [`call_later`]; dropping it does not cancel it.
/// Bound to the thread whose hub armed it (`!Send`): each hub numbers its own timers.
///
/// # Examples
///
/// ```
/// use std::{cell::Cell, rc::Rc, time::Duration};
/// let fired = Rc::new(Cell::new(false));
/// let f = fired.clone();
/// let t = green::timer::call_later(Duration::from_millis(50), move || f.set(true));
/// t.cancel();
/// green::sleep(Duration::from_millis(100));
/// assert!(!fired.get());
/// ```
///
/// It cannot be sent to another thread:
///
/// ```compile_fail
/// fn send<T: Send>(_: T) {}
/// send(green::timer::call_later(std::time::Duration::from_secs(1), || ()));
/// ```
#[derive(Debug)]
pub struct TimerHandle {
    key: Key,
    _not_send: std::marker::PhantomData<*const ()>,
}

impl TimerHandle {
    /// Disarms the timer; returns whether it was still armed.
    ///
    /// ```
    /// let t = green::timer::call_later(std::time::Duration::from_secs(5), || ());
    /// assert!(t.cancel());
    /// ```
    pub fn cancel(self) -> bool {
        cancel(self.key)
    }
}

/// Runs `f` in the hub at `deadline`. `f` must not block or switch (it runs in the
/// hub, as gevent's timer callbacks do); it may spawn, unpark, or raise in a greenlet
/// with [`throw_into`](crate::throw_into). A [`sleep`](crate::sleep),
/// [`yield_now`](crate::yield_now) or switch in `f` panics, and the hub logs the panic
/// (the rest of `f` does not run); waits that return a `Result` return
/// [`BlockError::InHub`](crate::BlockError::InHub).
///
/// ```
/// use std::{cell::Cell, rc::Rc, time::{Duration, Instant}};
/// let fired = Rc::new(Cell::new(false));
/// let f = fired.clone();
/// green::timer::call_at(Instant::now() + Duration::from_millis(10), move || f.set(true));
/// green::sleep(Duration::from_millis(30));
/// assert!(fired.get());
/// ```
pub fn call_at(deadline: Instant, f: impl FnOnce() + 'static) -> TimerHandle {
    TimerHandle {
        key: add(deadline, Action::Call(Box::new(f))),
        _not_send: std::marker::PhantomData,
    }
}

/// Runs `f` in the hub after `delay` (see [`call_at`]).
///
/// ```
/// use std::{cell::Cell, rc::Rc, time::Duration};
/// let n = Rc::new(Cell::new(0));
/// let m = n.clone();
/// green::timer::call_later(Duration::ZERO, move || m.set(1));
/// green::sleep(Duration::from_millis(5));
/// assert_eq!(n.get(), 1);
/// ```
pub fn call_later(delay: Duration, f: impl FnOnce() + 'static) -> TimerHandle {
    call_at(deadline_after(delay), f)
}

/// `now + d`, saturating far in the future instead of overflowing.
pub(crate) fn deadline_after(d: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(d)
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 3600))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::rc::Rc;

    /// Arms a `Call` timer that records `id` when it fires.
    fn arm(t: &mut Timers, at: Instant, id: u32, log: &Rc<RefCell<Vec<u32>>>) -> Key {
        let log = log.clone();
        t.add(
            at,
            Action::Call(Box::new(move || log.borrow_mut().push(id))),
        )
    }

    /// Fires everything due at `now`, in order.
    fn fire(t: &mut Timers, now: Instant) {
        while let Some(action) = t.pop_due(now) {
            match action {
                Action::Call(f) => f(),
                _ => unreachable!(),
            }
        }
    }

    #[test]
    fn timers_fire_in_deadline_then_arming_order_whatever_order_they_were_armed_in() {
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let log = Rc::new(RefCell::new(Vec::new()));
        let mut t = Timers::new();
        // (deadline in ms, id): in order, then earlier ones, equal ones, a late one.
        let armed = [
            (5, 1),
            (7, 2),
            (3, 3),
            (7, 4),
            (1, 5),
            (9, 6),
            (7, 7),
            (2, 8),
        ];
        for (at, id) in armed {
            arm(&mut t, ms(at), id, &log);
        }
        assert!(
            !t.run.is_empty() && !t.heap.is_empty(),
            "both queues in use"
        );
        assert_eq!(t.next_deadline(), Some(ms(1)));
        fire(&mut t, ms(4));
        assert_eq!(*log.borrow(), [5, 8, 3]);
        assert_eq!(t.next_deadline(), Some(ms(5)));
        fire(&mut t, ms(100));
        assert_eq!(*log.borrow(), [5, 8, 3, 1, 2, 4, 7, 6]);
        assert!(t.is_empty());
    }

    #[test]
    fn timers_armed_in_deadline_order_stay_out_of_the_heap() {
        let t0 = Instant::now();
        let log = Rc::new(RefCell::new(Vec::new()));
        let mut t = Timers::new();
        for i in 0..1000 {
            arm(&mut t, t0 + Duration::from_micros(i / 3), i as u32, &log);
        }
        assert_eq!((t.run.len(), t.heap.len()), (1000, 0));
        fire(&mut t, t0 + Duration::from_secs(1));
        assert_eq!(*log.borrow(), (0..1000).collect::<Vec<u32>>());
    }

    #[test]
    fn cancelled_timers_are_skipped_and_do_not_pile_up() {
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let log = Rc::new(RefCell::new(Vec::new()));
        let mut t = Timers::new();
        let keep_run = arm(&mut t, ms(10), 1, &log);
        let keep_heap = arm(&mut t, ms(5), 2, &log);
        // A loop of timeouts armed and cancelled, in the run and in the heap.
        for i in 0..10_000u64 {
            let k = arm(&mut t, ms(20 + i), 100, &log);
            assert!(t.cancel(k).is_some());
            let k = arm(&mut t, ms(1), 200, &log);
            assert!(t.cancel(k).is_some());
        }
        assert!(
            t.run.len() + t.heap.len() <= 2 * 64 + 2,
            "queued {}",
            t.run.len() + t.heap.len()
        );
        assert!(t.cancel(keep_run).is_some());
        assert!(t.cancel(keep_run).is_none(), "cancelled twice");
        assert_eq!(t.next_deadline(), Some(ms(5)));
        assert!(!t.is_empty());
        fire(&mut t, ms(100_000));
        assert_eq!(*log.borrow(), [2]);
        assert!(t.cancel(keep_heap).is_none(), "fired already");
        assert!(t.is_empty());
        assert_eq!(t.next_deadline(), None);
    }
}
