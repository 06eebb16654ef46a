//! [`Registration`]: the guard returned by [`Waitable::on_ready`]; dropping it
//! withdraws the callback. Also the keyed callback lists behind it: an [`Event`]'s,
//! and the per-thread table of withdrawable greenlet-exit callbacks.
//!
//! [`Waitable::on_ready`]: super::Waitable::on_ready
//! [`Event`]: super::Event

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt;
use std::rc::{Rc, Weak};

use slab::Slab;

use crate::greenlet::Greenlet;
use crate::hub::park::Unparker;

/// A callback registered with [`Waitable::on_ready`](super::Waitable::on_ready).
/// Dropping it withdraws the callback if it has not run yet, so a wait that ends
/// early (a timeout, another object ready first, a kill) leaves nothing behind on
/// the objects it waited for. [`detach`](Registration::detach) keeps the callback
/// registered instead.
///
/// A [`Waitable`](super::Waitable) implemented by delegating returns the inner
/// object's registration; one that keeps callbacks of its own makes one with
/// [`Registration::new`].
///
/// # Examples
///
/// ```
/// use std::{cell::Cell, rc::Rc};
/// use green::Waitable;
///
/// let ev = green::Event::new();
/// let ran = Rc::new(Cell::new(0));
/// let r = ran.clone();
/// let reg = ev.on_ready(Box::new(move || r.set(r.get() + 1)));
/// drop(reg); // withdrawn: setting the event no longer runs it
/// let r = ran.clone();
/// ev.on_ready(Box::new(move || r.set(r.get() + 10))).detach(); // stays registered
/// ev.set();
/// assert_eq!(ran.get(), 10);
/// ```
#[must_use = "dropping a Registration withdraws its callback at once; use `detach` to keep it"]
pub struct Registration(Withdraw);

enum Withdraw {
    /// Nothing to withdraw: the callback ran at once, or was detached.
    Nothing,
    /// An entry of a [`CallbackList`] owned by `host`.
    Listed {
        host: Weak<dyn CallbackHost>,
        key: usize,
        seq: u64,
    },
    /// A user-supplied withdrawal ([`Registration::new`]).
    Custom(Box<dyn FnOnce()>),
}

impl Registration {
    /// A registration whose drop runs `withdraw`: for a [`Waitable`](super::Waitable)
    /// that keeps its own callbacks. `withdraw` runs at most once, when the
    /// registration is dropped (not when detached); it must not block or switch.
    ///
    /// ```
    /// use std::{cell::RefCell, rc::Rc};
    /// use green::Registration;
    ///
    /// // A hand-made callback slot.
    /// let slot: Rc<RefCell<Option<Box<dyn FnOnce()>>>> = Rc::default();
    /// *slot.borrow_mut() = Some(Box::new(|| println!("ready")));
    /// let s = slot.clone();
    /// let reg = Registration::new(move || drop(s.borrow_mut().take()));
    /// drop(reg);
    /// assert!(slot.borrow().is_none());
    /// ```
    pub fn new(withdraw: impl FnOnce() + 'static) -> Registration {
        Registration(Withdraw::Custom(Box::new(withdraw)))
    }

    /// A registration with nothing to withdraw, for a callback that already ran (the
    /// object was ready when it was registered).
    ///
    /// ```
    /// drop(green::Registration::empty()); // does nothing
    /// ```
    pub fn empty() -> Registration {
        Registration(Withdraw::Nothing)
    }

    /// Keeps the callback registered until the object becomes ready (or is dropped):
    /// the behaviour of `on_ready` before it returned a `Registration`.
    ///
    /// ```
    /// use std::{cell::Cell, rc::Rc};
    /// use green::Waitable;
    ///
    /// let ev = green::Event::new();
    /// let ran = Rc::new(Cell::new(false));
    /// let r = ran.clone();
    /// ev.on_ready(Box::new(move || r.set(true))).detach();
    /// ev.set();
    /// assert!(ran.get());
    /// ```
    pub fn detach(mut self) {
        // Dropping the withdrawal without running it; `self` then drops as `Nothing`.
        drop(std::mem::replace(&mut self.0, Withdraw::Nothing));
    }
}

impl Default for Registration {
    fn default() -> Self {
        Registration::empty()
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        match std::mem::replace(&mut self.0, Withdraw::Nothing) {
            Withdraw::Nothing => {}
            Withdraw::Listed { host, key, seq } => {
                if let Some(host) = host.upgrade() {
                    // The callback is dropped here, after the list's borrow has ended.
                    let withdrawn = host.callbacks().withdraw(key, seq);
                    drop(withdrawn);
                }
            }
            Withdraw::Custom(withdraw) => withdraw(),
        }
    }
}

impl fmt::Debug for Registration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &self.0 {
            Withdraw::Nothing => "empty",
            Withdraw::Listed { .. } => "listed",
            Withdraw::Custom(_) => "custom",
        };
        f.debug_tuple("Registration").field(&kind).finish()
    }
}

/// A registered callback with its sequence number.
type Entry = (u64, Box<dyn FnOnce()>);

/// What owns a [`CallbackList`]; registrations hold it weakly.
pub(crate) trait CallbackHost {
    fn callbacks(&self) -> &CallbackList;
}

/// One-shot callbacks keyed in a slab: adding and withdrawing are O(1); they run in
/// registration order. Each entry carries a sequence number so that a registration
/// whose entry already ran cannot withdraw a newer one that reused its key.
#[derive(Default)]
pub(crate) struct CallbackList {
    slab: RefCell<Slab<Entry>>,
    next_seq: Cell<u64>,
}

impl CallbackHost for CallbackList {
    fn callbacks(&self) -> &CallbackList {
        self
    }
}

impl CallbackList {
    /// How many callbacks are registered (tests).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.slab.borrow().len()
    }

    /// Whether no callback is registered.
    pub(crate) fn is_empty(&self) -> bool {
        self.slab.borrow().is_empty()
    }

    /// Adds `f`; `host` owns this list.
    pub(crate) fn add(&self, host: Weak<dyn CallbackHost>, f: Box<dyn FnOnce()>) -> Registration {
        let seq = self.next_seq.get();
        self.next_seq.set(seq.wrapping_add(1));
        let key = self.slab.borrow_mut().insert((seq, f));
        Registration(Withdraw::Listed { host, key, seq })
    }

    /// Removes the entry `key` if it is still the one numbered `seq`; the caller drops
    /// what it gets back (user code) after the borrow has ended.
    fn withdraw(&self, key: usize, seq: u64) -> Option<Box<dyn FnOnce()>> {
        // Never borrowed while user code runs, so this cannot fail; if it ever did,
        // leaving the entry is better than panicking in a drop.
        let mut slab = self.slab.try_borrow_mut().ok()?;
        match slab.get(key) {
            Some((s, _)) if *s == seq => Some(slab.remove(key).1),
            _ => None,
        }
    }

    /// Takes every callback, in registration order, for the caller to run.
    pub(crate) fn take_all(&self) -> Vec<Box<dyn FnOnce()>> {
        let mut all: Vec<Entry> = self.slab.borrow_mut().drain().collect();
        all.sort_unstable_by_key(|(seq, _)| *seq);
        all.into_iter().map(|(_, f)| f).collect()
    }
}

/// This layer's per-thread state: the withdrawable exit callbacks of the thread's
/// greenlets.
#[derive(Default)]
struct ExitCallbacks {
    /// The lists, by greenlet id. A greenlet's list exists while it has a dispatcher
    /// among its exit callbacks (installed once, with the first registration), so that
    /// repeated waits reuse it.
    lists: RefCell<HashMap<u64, Rc<CallbackList>>>,
    /// The exit callbacks of joins that found the joiner slot taken
    /// ([`add_extra_joiner`]), with the unparker of the park each serves.
    extra_joiners: RefCell<Vec<(Unparker, Registration)>>,
}

thread_local! {
    static EXIT_CALLBACKS: ExitCallbacks = ExitCallbacks::default();
}

/// Registers `f` to run in the hub when `g` dies (at once if it is dead); dropping the
/// registration withdraws it. The non-withdrawable `Greenlet::on_exit` (links) and the
/// joiner slot are untouched: one dispatcher callback per greenlet runs these.
pub(crate) fn on_exit(g: &Greenlet, f: Box<dyn FnOnce()>) -> Registration {
    if g.dead() {
        f();
        return Registration::empty();
    }
    let gid = g.id();
    let Ok(known) = EXIT_CALLBACKS.try_with(|c| c.lists.borrow().get(&gid).cloned()) else {
        // The thread is ending (its table is gone): a plain exit callback.
        g.on_exit(Box::new(move |_| f()));
        return Registration::empty();
    };
    let list = match known {
        Some(list) => list,
        None => {
            let list = Rc::new(CallbackList::default());
            let _ = EXIT_CALLBACKS.try_with(|c| c.lists.borrow_mut().insert(gid, list.clone()));
            let dispatch = ExitDispatch { gid };
            g.on_exit(Box::new(move |_| dispatch.fire()));
            list
        }
    };
    let host: Weak<CallbackList> = Rc::downgrade(&list);
    list.add(host, f)
}

/// Wakes `u`'s park when `g` dies: the fallback of `Greenlet::set_joiner` when
/// another greenlet's park holds the joiner slot. The join path does not hold the
/// registration (so that the common single join stays as it is); instead, each call
/// withdraws those of parks that are over (timed-out or woken joins), so repeated
/// timed-out joins behind a joiner leave at most one stale entry per waiter.
#[cold]
#[inline(never)]
pub(crate) fn add_extra_joiner(g: &Greenlet, u: Unparker) {
    let stale: Vec<(Unparker, Registration)> = EXIT_CALLBACKS
        .try_with(|c| {
            let mut l = c.extra_joiners.borrow_mut();
            let (live, stale) = std::mem::take(&mut *l)
                .into_iter()
                .partition(|(u, _)| u.is_current_park());
            *l = live;
            stale
        })
        .unwrap_or_default();
    // Withdrawn after the borrow has ended.
    drop(stale);
    let waker = u.clone();
    let reg = on_exit(
        g,
        Box::new(move || {
            waker.unpark();
        }),
    );
    let mut entry = Some((u, reg));
    let _ = EXIT_CALLBACKS.try_with(|c| c.extra_joiners.borrow_mut().extend(entry.take()));
    if let Some((_, reg)) = entry {
        // The thread is ending (the list is gone): the callback just stays registered.
        reg.detach();
    }
}

/// How many withdrawable exit callbacks `g` has (tests).
#[cfg(test)]
pub(crate) fn exit_callback_count(g: &Greenlet) -> usize {
    EXIT_CALLBACKS.with(|c| c.lists.borrow().get(&g.id()).map_or(0, |l| l.len()))
}

/// Whether `g` has a withdrawable exit-callback list (tests).
#[cfg(test)]
pub(crate) fn has_exit_list(g: &Greenlet) -> bool {
    EXIT_CALLBACKS.with(|c| c.lists.borrow().contains_key(&g.id()))
}

/// The exit callback that runs a greenlet's withdrawable callbacks; dropping it (the
/// greenlet was dropped without dying, or it has run) removes the greenlet's list.
struct ExitDispatch {
    gid: u64,
}

impl ExitDispatch {
    fn fire(&self) {
        if let Some(list) = take_exit_list(self.gid) {
            for cb in list.take_all() {
                crate::greenlet::trampoline::run_callback(cb);
            }
        }
    }
}

impl Drop for ExitDispatch {
    fn drop(&mut self) {
        // The list (and any callbacks left in it) is dropped after the table's borrow.
        drop(take_exit_list(self.gid));
    }
}

fn take_exit_list(gid: u64) -> Option<Rc<CallbackList>> {
    EXIT_CALLBACKS
        .try_with(|c| {
            c.lists
                .try_borrow_mut()
                .ok()
                .and_then(|mut m| m.remove(&gid))
        })
        .ok()
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn host(list: &Rc<CallbackList>) -> Weak<dyn CallbackHost> {
        let w: Weak<CallbackList> = Rc::downgrade(list);
        w
    }

    #[test]
    fn withdrawn_callbacks_are_gone_and_the_rest_run_in_order() {
        let list = Rc::new(CallbackList::default());
        let seen = Rc::new(RefCell::new(Vec::new()));
        let mut regs: Vec<Option<Registration>> = (0..5)
            .map(|i| {
                let s = seen.clone();
                Some(list.add(host(&list), Box::new(move || s.borrow_mut().push(i))))
            })
            .collect();
        drop(regs[0].take());
        drop(regs[3].take());
        assert_eq!(list.len(), 3);
        for cb in list.take_all() {
            cb();
        }
        assert_eq!(*seen.borrow(), [1, 2, 4]);
    }

    #[test]
    fn a_stale_registration_does_not_withdraw_a_newer_one_with_its_key() {
        let list = Rc::new(CallbackList::default());
        let old = list.add(host(&list), Box::new(|| ()));
        for cb in list.take_all() {
            cb();
        }
        let ran = Rc::new(Cell::new(false));
        let r = ran.clone();
        let new = list.add(host(&list), Box::new(move || r.set(true)));
        drop(old); // same slab key, older sequence number
        assert_eq!(list.len(), 1);
        for cb in list.take_all() {
            cb();
        }
        assert!(ran.get());
        drop(new);
    }

    #[test]
    fn dropping_the_list_first_is_fine() {
        let list = Rc::new(CallbackList::default());
        let reg = list.add(host(&list), Box::new(|| ()));
        drop(list);
        drop(reg);
    }

    #[test]
    fn exit_callbacks_are_withdrawn_and_the_list_goes_with_the_greenlet() {
        let h = crate::api::spawn::spawn(|| crate::hub::time::sleep(Duration::from_secs(60)));
        let g = h.greenlet().clone();
        for _ in 0..100 {
            drop(on_exit(&g, Box::new(|| ())));
        }
        assert_eq!(exit_callback_count(&g), 0);
        // One dispatcher, whatever the number of registrations.
        assert_eq!(g.0.cold.on_exit.borrow().len(), 1);
        let ran = Rc::new(Cell::new(false));
        let r = ran.clone();
        let reg = on_exit(&g, Box::new(move || r.set(true)));
        assert_eq!(exit_callback_count(&g), 1);
        h.kill();
        assert!(ran.get());
        assert!(!has_exit_list(&g));
        drop(reg);
        // Dead: runs at once.
        let ran = Rc::new(Cell::new(false));
        let r = ran.clone();
        drop(on_exit(&g, Box::new(move || r.set(true))));
        assert!(ran.get());
    }

    #[test]
    fn a_greenlet_dropped_unstarted_takes_its_list_along() {
        let g = Greenlet::new(|_: crate::greenlet::value::Value| ());
        let reg = on_exit(&g, Box::new(|| ()));
        assert!(has_exit_list(&g));
        let id = g.id();
        drop(g);
        assert!(!EXIT_CALLBACKS.with(|c| c.lists.borrow().contains_key(&id)));
        drop(reg);
    }
}
