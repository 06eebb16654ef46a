//! Internal waiter lists shared by the primitives of `sync`.
//!
//! - [`HandoffList`]: a FIFO of parked greenlets, each waiting for a value handed to it
//!   directly (a queue item, a semaphore permit). A waiter that times out or is killed
//!   is removed by its guard; one killed *after* a value was handed to it gives the
//!   value back through the primitive's `give_back`, so nothing is ever lost.
//! - [`WakeAll`]: greenlets waiting for a condition (an event), woken all at once.
//!
//! No `RefCell` borrow is held across a park.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::Instant;

use slab::Slab;

use crate::greenlet::error::BlockError;
use crate::greenlet::record::ParkLabel;
use crate::hub::park::{Unparker, Wake, park_as, unparker};

/// One parked waiter of a [`HandoffList`].
pub(crate) struct Node<V, D = ()> {
    u: RefCell<Unparker>,
    /// What was handed over; `Some` once the waiter has been served.
    val: RefCell<Option<V>>,
    /// Data the waiter brings (a putter's item), taken by whoever serves it.
    pub(crate) data: RefCell<Option<D>>,
    linked: Cell<bool>,
}

/// A FIFO of waiters that are served by handing them a value.
pub(crate) struct HandoffList<V, D = ()> {
    q: RefCell<VecDeque<Rc<Node<V, D>>>>,
}

impl<V, D> Default for HandoffList<V, D> {
    fn default() -> Self {
        HandoffList {
            q: RefCell::new(VecDeque::new()),
        }
    }
}

/// How a [`HandoffList::wait`] ended without being served.
#[derive(Debug)]
pub(crate) enum WaitFail<D> {
    TimedOut(Option<D>),
    Blocked(BlockError, Option<D>),
}

impl<V, D> HandoffList<V, D> {
    pub(crate) fn is_empty(&self) -> bool {
        self.q.borrow().is_empty()
    }

    pub(crate) fn len(&self) -> usize {
        self.q.borrow().len()
    }

    /// `f` applied to the data of the first waiter (`None` if there is none, or it has
    /// no data left).
    pub(crate) fn first_data<R>(&self, f: impl FnOnce(Option<&D>) -> R) -> R {
        let q = self.q.borrow();
        let data = q.front().map(|n| n.data.borrow());
        f(data.as_ref().and_then(|d| d.as_ref()))
    }

    /// Takes the first waiter off the list (it is then no longer linked); serve it
    /// with [`serve`].
    pub(crate) fn pop(&self) -> Option<Rc<Node<V, D>>> {
        let n = self.q.borrow_mut().pop_front()?;
        n.linked.set(false);
        Some(n)
    }

    /// Serves the first waiter with `v`; gives `v` back if there is none.
    pub(crate) fn hand(&self, v: V) -> Result<(), V> {
        match self.pop() {
            Some(n) => {
                serve(&n, v);
                Ok(())
            }
            None => Err(v),
        }
    }

    /// Takes every waiter off the list.
    pub(crate) fn drain(&self) -> Vec<Rc<Node<V, D>>> {
        let all: Vec<_> = self.q.borrow_mut().drain(..).collect();
        for n in &all {
            n.linked.set(false);
        }
        all
    }

    fn remove(&self, node: &Rc<Node<V, D>>) {
        if node.linked.replace(false) {
            self.q.borrow_mut().retain(|n| !Rc::ptr_eq(n, node));
        }
    }

    /// Parks the current greenlet at the back of the list until it is served (returns
    /// the value and what is left of its `data`), `deadline` passes or the park fails
    /// (returns its `data` back). `label` says what it waits for, for the dump.
    /// If it unwinds (killed, a timeout) after being served, `give_back` receives the
    /// value.
    pub(crate) fn wait(
        &self,
        label: ParkLabel,
        data: Option<D>,
        deadline: Option<Instant>,
        give_back: impl Fn(V),
    ) -> Result<(V, Option<D>), WaitFail<D>> {
        let node = Rc::new(Node {
            u: RefCell::new(unparker()),
            val: RefCell::new(None),
            data: RefCell::new(data),
            linked: Cell::new(true),
        });
        self.q.borrow_mut().push_back(node.clone());
        let guard = Guard {
            list: self,
            node,
            give_back,
        };
        let served = |n: &Node<V, D>| {
            let v = n.val.borrow_mut().take()?;
            Some((v, n.data.borrow_mut().take()))
        };
        loop {
            if let Some(r) = served(&guard.node) {
                return Ok(r);
            }
            let r = park_as(deadline, label);
            // Served and woken, or served while the timer was waking us: either way
            // the value is ours.
            if let Some(r) = served(&guard.node) {
                return Ok(r);
            }
            match r {
                Ok(Wake::Unparked) => {
                    // Spurious (an explicit switch): wait again with a fresh unparker.
                    *guard.node.u.borrow_mut() = unparker();
                }
                Ok(Wake::TimedOut) => {
                    self.remove(&guard.node);
                    return Err(WaitFail::TimedOut(guard.node.data.borrow_mut().take()));
                }
                Err(e) => {
                    self.remove(&guard.node);
                    return Err(WaitFail::Blocked(e, guard.node.data.borrow_mut().take()));
                }
            }
        }
    }
}

/// Gives `v` to a waiter taken off its list and wakes it.
pub(crate) fn serve<V, D>(n: &Node<V, D>, v: V) {
    *n.val.borrow_mut() = Some(v);
    n.u.borrow().unpark();
}

struct Guard<'a, V, D, F: Fn(V)> {
    list: &'a HandoffList<V, D>,
    node: Rc<Node<V, D>>,
    give_back: F,
}

impl<V, D, F: Fn(V)> Drop for Guard<'_, V, D, F> {
    fn drop(&mut self) {
        self.list.remove(&self.node);
        // Served, but unwinding (killed or timed out) before taking it: pass it on.
        let v = self.node.val.borrow_mut().take();
        if let Some(v) = v {
            (self.give_back)(v);
        }
    }
}

/// Greenlets waiting for a condition, woken all at once.
#[derive(Default)]
pub(crate) struct WakeAll {
    waiters: RefCell<Slab<Unparker>>,
    /// Bumped by every `wake_all`, so a waiter knows it was woken even if the
    /// condition is false again by the time it runs.
    generation: Cell<u64>,
}

impl WakeAll {
    pub(crate) fn generation(&self) -> u64 {
        self.generation.get()
    }

    /// How many waiters are listed (tests).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.waiters.borrow().len()
    }

    /// Whether no greenlet waits.
    pub(crate) fn is_empty(&self) -> bool {
        self.waiters.borrow().is_empty()
    }

    pub(crate) fn wake_all(&self) {
        self.generation.set(self.generation.get().wrapping_add(1));
        let all: Vec<Unparker> = self.waiters.borrow_mut().drain().collect();
        for u in all {
            u.unpark();
        }
    }

    /// Parks until `wake_all` is called after `since` (a `generation()` read before
    /// checking the condition), or `deadline`. `Ok(true)` when woken. `label` says what
    /// it waits for, for the dump.
    pub(crate) fn wait(
        &self,
        label: ParkLabel,
        since: u64,
        deadline: Option<Instant>,
    ) -> Result<bool, BlockError> {
        loop {
            if self.generation.get() != since {
                return Ok(true);
            }
            let key = self.waiters.borrow_mut().insert(unparker());
            let guard = SlabGuard {
                slab: &self.waiters,
                key,
            };
            let r = park_as(deadline, label);
            drop(guard);
            if self.generation.get() != since {
                return Ok(true);
            }
            match r? {
                Wake::TimedOut => return Ok(false),
                Wake::Unparked => continue,
            }
        }
    }
}

struct SlabGuard<'a> {
    slab: &'a RefCell<Slab<Unparker>>,
    key: usize,
}

impl Drop for SlabGuard<'_> {
    fn drop(&mut self) {
        // The key may be gone (drained by wake_all) and reused by another greenlet's
        // waiter; a greenlet parks once at a time, so an entry for us is ours.
        let mut s = self.slab.borrow_mut();
        if s.get(self.key).is_some_and(|u| u.greenlet().is_current()) {
            s.remove(self.key);
        }
    }
}
