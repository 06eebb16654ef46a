//! Timers: where a sleeping greenlet wakes up.
//!
//! The hub keeps one binary heap of deadlines. Cancelling is lazy: the heap entry stays
//! and is skipped when it surfaces (its slab slot is gone or reused with another
//! sequence number); the heap is rebuilt when stale entries outnumber live ones, so a
//! loop of cancelled timeouts does not grow memory.
//!
//! Due timers fire when the hub runs out of ready greenlets, and every few dozen
//! scheduling ticks while greenlets are ready, so a busy loop of `yield_now` cannot
//! starve a sleeper.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use slab::Slab;

use crate::greenlet::Greenlet;
use crate::hub::{try_with_hub, with_hub, Hub};
use crate::park::{Unparker, Wake};

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

pub(crate) struct Timers {
    heap: BinaryHeap<Reverse<(Instant, u64, usize)>>,
    slots: Slab<(u64, Action)>,
    next_seq: u64,
}

impl Timers {
    pub(crate) fn new() -> Timers {
        Timers {
            heap: BinaryHeap::new(),
            slots: Slab::new(),
            next_seq: 0,
        }
    }

    fn add(&mut self, deadline: Instant, action: Action) -> Key {
        let seq = self.next_seq;
        self.next_seq += 1;
        let slot = self.slots.insert((seq, action));
        self.heap.push(Reverse((deadline, seq, slot)));
        Key { slot, seq }
    }

    fn cancel(&mut self, key: Key) -> Option<Action> {
        match self.slots.get(key.slot) {
            Some((seq, _)) if *seq == key.seq => {}
            _ => return None,
        }
        let (_, action) = self.slots.remove(key.slot);
        if self.heap.len() > 64 && self.heap.len() > 2 * self.slots.len() {
            let slots = &self.slots;
            self.heap
                .retain(|Reverse((_, seq, slot))| slots.get(*slot).is_some_and(|(s, _)| s == seq));
        }
        Some(action)
    }

    /// Whether no timer is armed (nor any cancelled one still in the heap).
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    fn is_live(&self, seq: u64, slot: usize) -> bool {
        self.slots.get(slot).is_some_and(|(s, _)| *s == seq)
    }

    /// The earliest live deadline (dropping stale heap entries on the way).
    pub(crate) fn next_deadline(&mut self) -> Option<Instant> {
        while let Some(Reverse((when, seq, slot))) = self.heap.peek().copied() {
            if self.is_live(seq, slot) {
                return Some(when);
            }
            self.heap.pop();
        }
        None
    }

    fn pop_due(&mut self, now: Instant) -> Option<Action> {
        loop {
            let Reverse((when, seq, slot)) = *self.heap.peek()?;
            if !self.is_live(seq, slot) {
                self.heap.pop();
                continue;
            }
            if when > now {
                return None;
            }
            self.heap.pop();
            return Some(self.slots.remove(slot).1);
        }
    }
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

/// Disarms the timer that would start `g` (`spawn_later`), if it is still armed: `g`
/// died before it fired, and an armed timer keeps the hub from reporting that nothing
/// can ever wake (and keeps `g`'s record alive).
pub(crate) fn cancel_start(g: &Greenlet) {
    if let Some(key) = g.0.start_timer.take() {
        cancel(key);
    }
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
                // `driver::resume`.)
                g.0.start_timer.set(None);
                crate::driver::schedule(
                    h,
                    &g,
                    crate::driver::Input::Value(crate::value::Value::none()),
                );
            }
            Action::Call(f) => {
                crate::driver::run_hub_callback(f);
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
/// with [`throw_into`](crate::throw_into).
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
