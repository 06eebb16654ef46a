//! The methods of [`JoinHandle`], a spawned greenlet's handle, with [`LinkId`] and the
//! joins of one greenlet ([`wait_dead`] and its joiner slot).

use std::any::Any;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::{JoinHandle, value_as, value_into};
use crate::greenlet::error::{BlockError, GreenletExit, JoinError, payload_str};
use crate::greenlet::outcome::{DETACHED, OBSERVED, TAKEN};
use crate::greenlet::record::ParkLabel;
use crate::greenlet::record::Waiter;
use crate::greenlet::thread;
use crate::greenlet::{Greenlet, Payload};
use crate::hub::park::{self, Unparker, Wake, park_inline, unparker};
use crate::hub::timer::deadline_after;
use crate::hub::{throw, with_hub};

/// Waits until `g` is dead or `deadline` passes; `Ok(true)` when dead.
pub(crate) fn wait_dead(g: &Greenlet, deadline: Option<Instant>) -> Result<bool, JoinError> {
    if g.is_current() && !g.dead() {
        return Err(JoinError::JoinSelf);
    }
    // A join that ends before `g` dies (timed out, or unwound by a kill) takes its stale
    // unparker back out of `g`'s joiner slot: it holds a handle to the caller.
    struct Withdraw<'a>(&'a Greenlet);
    impl Drop for Withdraw<'_> {
        fn drop(&mut self) {
            if !self.0.dead() {
                withdraw_joiner(self.0);
            }
        }
    }
    let _withdraw = Withdraw(g);
    while !g.dead() {
        let u = unparker();
        park::label(&u, ParkLabel::with("join, greenlet", g.id()));
        set_joiner(g, u);
        match park_inline(deadline)? {
            Wake::TimedOut if !g.dead() => return Ok(false),
            _ => {}
        }
    }
    Ok(true)
}

/// Arranges for the calling greenlet (whose park `u` belongs to) to be woken when `g`
/// dies. `g`'s single joiner slot is used when it is free or holds a stale unparker (a
/// join that timed out); otherwise a withdrawable exit callback is added, withdrawn once
/// `u`'s park is over (see `add_extra_joiner`).
#[inline]
fn set_joiner(g: &Greenlet, u: Unparker) {
    let mut slot = g.0.cold.joiner.borrow_mut();
    if slot.is_none() {
        *slot = Some(Waiter::from(u));
    } else {
        drop(slot);
        set_joiner_slow(g, u);
    }
}

/// [`set_joiner`] when the slot is taken.
#[cold]
#[inline(never)]
fn set_joiner_slow(g: &Greenlet, u: Unparker) {
    let mut slot = g.0.cold.joiner.borrow_mut();
    if slot
        .as_ref()
        .is_none_or(|old| old.g.0.core.park_seq.get() != old.seq)
    {
        let stale = slot.replace(Waiter::from(u));
        drop(slot);
        drop(stale);
    } else {
        drop(slot);
        crate::api::sync::registration::add_extra_joiner(g, u);
    }
}

/// Empties `g`'s joiner slot if it holds the calling greenlet's unparker (its join
/// ended without `g`'s death).
fn withdraw_joiner(g: &Greenlet) {
    let mut slot = g.0.cold.joiner.borrow_mut();
    if slot.as_ref().is_some_and(|w| w.g.is_current()) {
        let stale = slot.take();
        drop(slot);
        drop(stale);
    }
}

impl<T: 'static> JoinHandle<T> {
    /// Waits for the greenlet to finish and returns its value, or why there is none:
    /// [`JoinError::Panicked`] (with the payload), [`JoinError::Killed`], or
    /// [`JoinError::Blocked`] when nothing could ever finish it (gevent's `LoopExit`).
    ///
    /// ```
    /// let h = green::spawn(|| String::from("value"));
    /// assert_eq!(h.join().unwrap(), "value");
    /// ```
    pub fn join(self) -> Result<T, JoinError> {
        wait_dead(&self.g, None)?;
        self.take_result()
    }

    /// Like [`join`](JoinHandle::join) but gives up after `timeout` with
    /// [`JoinError::TimedOut`], leaving the greenlet running and the handle usable.
    ///
    /// ```
    /// use std::time::Duration;
    /// let h = green::spawn(|| green::sleep(Duration::from_millis(50)));
    /// assert!(h.join_timeout(Duration::from_millis(1)).unwrap_err().is_timeout());
    /// assert!(h.join_timeout(Duration::from_secs(5)).is_ok());
    /// ```
    pub fn join_timeout(&self, timeout: Duration) -> Result<T, JoinError> {
        if !wait_dead(&self.g, Some(deadline_after(timeout)))? {
            return Err(JoinError::TimedOut);
        }
        self.take_result()
    }

    /// Waits for the greenlet to finish without taking its value (gevent's `join()`);
    /// read it afterwards with [`value`](JoinHandle::value).
    ///
    /// ```
    /// let h = green::spawn(|| 3);
    /// h.wait().unwrap();
    /// assert_eq!(h.value(), Some(3));
    /// ```
    pub fn wait(&self) -> Result<(), BlockError> {
        match wait_dead(&self.g, None) {
            Ok(_) => Ok(()),
            Err(JoinError::Blocked(b)) => Err(b),
            Err(_) => Err(BlockError::WouldBlockForever),
        }
    }

    pub(super) fn take_result(&self) -> Result<T, JoinError> {
        let o = &self.g.0.cold.outcome;
        o.set(OBSERVED);
        if o.has(TAKEN) {
            return Err(JoinError::Taken);
        }
        // Inside one of this greenlet's `link` callbacks (in the hub) the result is lent
        // to the callback: it cannot be moved out meanwhile.
        let Ok(mut slot) = o.result.try_borrow_mut() else {
            return Err(JoinError::Blocked(BlockError::InHub));
        };
        o.set(TAKEN);
        let r = slot.take();
        drop(slot);
        match r {
            // The function returned a `T` (see `value_into`).
            Some(Ok(v)) => match value_into::<T>(v) {
                Some(t) => Ok(t),
                None => {
                    debug_assert!(false, "a spawned greenlet's result is not of its type");
                    Err(JoinError::Killed)
                }
            },
            Some(Err(e)) => Err(e),
            // A dead greenlet without a result was killed before it started.
            None => Err(JoinError::Killed),
        }
    }

    /// Schedules a greenlet made by [`Builder::build`](crate::Builder::build) to start
    /// (gevent's `start()`), as [`spawn`](crate::spawn) does: it runs once the caller
    /// blocks or yields. Does nothing if it is started or scheduled already, or finished.
    /// From the hub too.
    ///
    /// ```
    /// use std::{cell::Cell, rc::Rc};
    /// let ran = Rc::new(Cell::new(0));
    /// let r = ran.clone();
    /// let h = green::Builder::new().build(move || r.set(r.get() + 1)).unwrap();
    /// h.start();
    /// h.start(); // already scheduled: nothing more
    /// h.join().unwrap();
    /// assert_eq!(ran.get(), 1);
    /// ```
    pub fn start(&self) {
        if !self.is_started() {
            with_hub(|h| h.start_new(&self.g));
        }
    }

    /// Schedules a greenlet made by [`Builder::build`](crate::Builder::build) to start
    /// after `delay` (gevent's `start_later`). Does nothing if it is started or scheduled
    /// already, or finished (and neither does a [`start`](JoinHandle::start) after it).
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let t = Instant::now();
    /// let h = green::Builder::new().build(|| ()).unwrap();
    /// h.start_later(Duration::from_millis(20));
    /// assert!(h.is_started()); // scheduled
    /// h.join().unwrap();
    /// assert!(t.elapsed() >= Duration::from_millis(20));
    /// ```
    pub fn start_later(&self, delay: Duration) {
        if !self.is_started() {
            with_hub(|h| h.start_at(&self.g, deadline_after(delay)));
        }
    }

    /// Whether the greenlet was started or scheduled to start (gevent's `started`): by
    /// [`spawn`](crate::spawn), [`spawn_later`](crate::spawn_later),
    /// [`start`](JoinHandle::start) or [`start_later`](JoinHandle::start_later), or
    /// switched into; also once it is finished, or killed before it started. `false` only
    /// for one made by [`Builder::build`](crate::Builder::build) and not started yet.
    ///
    /// ```
    /// let h = green::Builder::new().build(|| ()).unwrap();
    /// assert!(!h.is_started());
    /// h.start();
    /// assert!(h.is_started());
    /// assert!(green::spawn(|| ()).is_started());
    /// ```
    pub fn is_started(&self) -> bool {
        let core = &self.g.0.core;
        self.g.started() || self.g.0.has_pending() || core.start_armed.get()
    }

    /// Whether the greenlet has finished (returned, panicked or been killed).
    ///
    /// ```
    /// let h = green::spawn(|| ());
    /// assert!(!h.is_finished());
    /// green::yield_now();
    /// assert!(h.is_finished());
    /// ```
    pub fn is_finished(&self) -> bool {
        self.g.dead()
    }

    /// Whether it finished by returning a value (gevent's `successful()`).
    ///
    /// ```
    /// let h = green::spawn(|| panic!("no"));
    /// let _ = h.wait();
    /// assert!(!h.is_successful());
    /// ```
    pub fn is_successful(&self) -> bool {
        matches!(&*self.g.0.cold.outcome.result.borrow(), Some(Ok(_)))
    }

    /// A copy of the value once the greenlet has returned, `None` before or when it
    /// failed (gevent's `.value`).
    ///
    /// ```
    /// let h = green::spawn(|| 7);
    /// assert_eq!(h.value(), None);
    /// green::yield_now();
    /// assert_eq!(h.value(), Some(7));
    /// ```
    pub fn value(&self) -> Option<T>
    where
        T: Clone,
    {
        match &*self.g.0.cold.outcome.result.borrow() {
            Some(Ok(v)) => value_as::<T>(v).cloned(),
            _ => None,
        }
    }

    /// Moves the outcome out once the greenlet has finished (`None` before). Later
    /// calls, and `join`, then give [`JoinError::Taken`].
    ///
    /// ```
    /// let h = green::spawn(|| vec![1]);
    /// assert!(h.try_take().is_none());
    /// green::yield_now();
    /// assert_eq!(h.try_take().unwrap().unwrap(), [1]);
    /// ```
    pub fn try_take(&self) -> Option<Result<T, JoinError>> {
        if !self.g.dead() {
            return None;
        }
        Some(self.take_result())
    }

    /// Kills the greenlet: raises [`GreenletExit`] at its switch point (its destructors
    /// run) and waits until it is dead (gevent's `kill()`). A greenlet not yet started
    /// never runs. Joining it then gives [`JoinError::Killed`]. Killing a finished
    /// greenlet does nothing. Called from the hub, it only schedules the kill.
    ///
    /// ```
    /// let h = green::spawn(|| loop { green::sleep(std::time::Duration::from_millis(1)) });
    /// green::yield_now();
    /// h.kill();
    /// assert!(h.join().unwrap_err().is_killed());
    /// ```
    pub fn kill(&self) {
        self.kill_by(Box::new(GreenletExit));
    }

    /// Kills the greenlet with `error` instead of [`GreenletExit`] (gevent's
    /// `kill(exception)`): `error` unwinds it from its switch point, and it waits until
    /// the greenlet is dead, as [`kill`](JoinHandle::kill) does.
    ///
    /// Joining it then gives [`JoinError::Panicked`] with `error` as the payload, as if
    /// its own code had panicked with it: downcast it with
    /// [`JoinError::into_panic`]. (gevent's greenlet, killed with an exception, has
    /// that exception as its outcome.) A greenlet that had not started dies with that
    /// outcome without running; the greenlet may also catch `error` and go on.
    /// `kill_with(GreenletExit)` is `kill()`. The outcome is not logged as a panic
    /// nobody joined: the caller chose it. Killing a finished greenlet does nothing.
    ///
    /// It is delivered as a kill: it wins over a throw or a timeout pending at the same
    /// time, and while it unwinds the greenlet, later kills are held (see
    /// [`kill`](JoinHandle::kill)).
    ///
    /// ```
    /// #[derive(Debug, PartialEq)]
    /// struct Shutdown(&'static str);
    ///
    /// let h = green::spawn(|| loop { green::sleep(std::time::Duration::from_millis(1)) });
    /// green::yield_now();
    /// h.kill_with(Shutdown("maintenance"));
    /// let payload = h.join().unwrap_err().into_panic();
    /// assert_eq!(payload.downcast_ref(), Some(&Shutdown("maintenance")));
    /// ```
    pub fn kill_with<E: Any + Send + 'static>(&self, error: E) {
        let p: Payload = Box::new(error);
        if p.is::<GreenletExit>() {
            return self.kill_by(p);
        }
        if !self.g.dead() {
            self.g.0.cold.outcome.set(OBSERVED);
        }
        self.kill_by(Box::new(throw::Carried {
            timeout: None,
            payload: p,
        }));
    }

    /// [`kill`](JoinHandle::kill) with the payload `p`, a kill (`GreenletExit` or a
    /// carried one).
    fn kill_by(&self, p: Payload) {
        if self.g.dead() {
            return;
        }
        if self.g.is_current() {
            // (Held instead, and this returns, in a destructor run by its unwinding.)
            throw::raise_here(p);
            return;
        }
        with_hub(|h| throw::deliver(h, &self.g, p));
        if !thread::in_scheduler() {
            let _ = wait_dead(&self.g, None);
        }
    }

    /// Schedules the kill without waiting for the greenlet to die
    /// (gevent's `kill(block=False)`).
    ///
    /// ```
    /// let h = green::spawn(|| ());
    /// h.kill_nowait();
    /// assert!(h.join().unwrap_err().is_killed());
    /// ```
    pub fn kill_nowait(&self) {
        with_hub(|h| throw::deliver(h, &self.g, Box::new(GreenletExit)));
    }

    /// The greenlet running the function.
    ///
    /// ```
    /// let h = green::spawn(|| ());
    /// assert!(h.greenlet().parent().unwrap().is_hub());
    /// ```
    pub fn greenlet(&self) -> &Greenlet {
        &self.g
    }

    /// Registers `f` to run in the hub when the greenlet finishes, with its outcome
    /// (`Ok(&value)`, or the error); returns the link's id, to withdraw it with
    /// [`unlink`](JoinHandle::unlink). Called at once if it has finished. Callbacks run
    /// in registration order and must not block (they run in the hub): there,
    /// [`sleep`](crate::sleep), [`yield_now`](crate::yield_now), [`wait`](crate::wait)
    /// and [`Greenlet::switch`] panic (the hub logs the panic; the rest of the callback
    /// does not run) and waits that return a `Result` return
    /// [`BlockError::InHub`]. The result is
    /// lent to the callbacks: inside one, taking it with `join` (or `try_take`) on a
    /// handle of the same greenlet gives `Err(JoinError::Blocked(BlockError::InHub))`
    /// (use the callback's argument; after the callbacks, `join` works).
    ///
    /// ```
    /// use std::{cell::Cell, rc::Rc};
    /// let seen = Rc::new(Cell::new(0));
    /// let s = seen.clone();
    /// let h = green::spawn(|| 5);
    /// h.link(move |r| s.set(*r.unwrap()));
    /// h.wait().unwrap();
    /// assert_eq!(seen.get(), 5);
    /// ```
    pub fn link(&self, f: impl FnOnce(Result<&T, &JoinError>) + 'static) -> LinkId {
        let id = LinkId::next();
        self.g.on_exit_keyed(
            id.0,
            Box::new(move |g: &Greenlet| {
                let r = g.0.cold.outcome.result.borrow();
                match &*r {
                    Some(Ok(v)) => match value_as::<T>(v) {
                        Some(v) => f(Ok(v)),
                        None => f(Err(&JoinError::Killed)),
                    },
                    Some(Err(e)) => f(Err(e)),
                    None => f(Err(&JoinError::Killed)),
                }
            }),
        );
        id
    }

    /// Withdraws the link `id` (from [`link`](JoinHandle::link),
    /// [`link_value`](JoinHandle::link_value) or [`link_error`](JoinHandle::link_error))
    /// if it has not run; returns whether it was withdrawn (gevent's `unlink`). Links
    /// run one at a time, in order, as the greenlet finishes: one of them may withdraw
    /// those after it.
    ///
    /// ```
    /// use std::{cell::Cell, rc::Rc};
    /// let ran = Rc::new(Cell::new(false));
    /// let r = ran.clone();
    /// let h = green::spawn(|| ());
    /// let link = h.link(move |_| r.set(true));
    /// assert!(h.unlink(link));
    /// assert!(!h.unlink(link)); // already withdrawn
    /// h.wait().unwrap();
    /// assert!(!ran.get());
    /// ```
    pub fn unlink(&self, id: LinkId) -> bool {
        self.g.remove_exit(Some(id.0)) > 0
    }

    /// Withdraws every link that has not run (gevent's `unlink_all`). What the runtime
    /// registers for itself (a [`Group`](crate::Group)'s bookkeeping, the waits of
    /// [`wait`](crate::wait)) stays.
    ///
    /// ```
    /// use std::{cell::Cell, rc::Rc};
    /// let runs = Rc::new(Cell::new(0));
    /// let h = green::spawn(|| 1);
    /// for _ in 0..3 {
    ///     let r = runs.clone();
    ///     h.link_value(move |_| r.set(r.get() + 1));
    /// }
    /// h.unlink_all();
    /// assert!(!h.has_links());
    /// assert_eq!(h.join().unwrap(), 1);
    /// assert_eq!(runs.get(), 0);
    /// ```
    pub fn unlink_all(&self) {
        self.g.remove_exit(None);
    }

    /// Whether a link waits to run (gevent's `has_links`): registered and neither run
    /// nor withdrawn.
    ///
    /// ```
    /// let h = green::spawn(|| ());
    /// assert!(!h.has_links());
    /// h.link(|_| ());
    /// assert!(h.has_links());
    /// h.wait().unwrap(); // the link runs as the greenlet finishes
    /// assert!(!h.has_links());
    /// ```
    pub fn has_links(&self) -> bool {
        self.g.has_keyed_exit()
    }
}

/// The id of a link (see [`JoinHandle::link`]), to withdraw it with
/// [`JoinHandle::unlink`]. Unique in the process.
///
/// ```
/// let h = green::spawn(|| ());
/// let a = h.link(|_| ());
/// let b = h.link(|_| ());
/// assert_ne!(a, b);
/// assert!(h.unlink(a) && h.unlink(b));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LinkId(u64);

impl LinkId {
    /// A new id (never 0: 0 marks the runtime's own exit callbacks).
    fn next() -> LinkId {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        LinkId(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

impl<T> Drop for JoinHandle<T> {
    #[inline]
    fn drop(&mut self) {
        let o = &self.g.0.cold.outcome;
        o.set(DETACHED);
        if !o.has(OBSERVED) {
            report_if_panicked(&self.g);
        }
    }
}

/// Logs the panic of a greenlet whose handle is dropped without the outcome ever having
/// been looked at.
#[cold]
#[inline(never)]
fn report_if_panicked(g: &Greenlet) {
    if let Some(Err(JoinError::Panicked(p))) = &*g.0.cold.outcome.result.borrow() {
        let msg = payload_str(p.as_ref()).unwrap_or("<non-string payload>");
        log::error!("green: greenlet {g:?} panicked and was never joined: {msg}");
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("greenlet", &self.g)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::spawn::spawn;

    #[test]
    fn a_caught_kill_leaves_switches_fast_once_no_unwinding_is_in_progress() {
        // A greenlet's destructor sleeps while a kill unwinds it.
        struct Sleepy;
        impl Drop for Sleepy {
            fn drop(&mut self) {
                crate::hub::time::sleep(Duration::from_millis(30));
            }
        }
        let a = spawn(|| {
            let _s = Sleepy;
            crate::hub::time::sleep(Duration::from_secs(10));
        });
        // B catches a kill while A unwinds, then parks for good.
        let ev = crate::api::sync::Event::new();
        let e = ev.clone();
        let b = spawn(move || {
            let r = std::panic::catch_unwind(|| crate::hub::time::sleep(Duration::from_secs(10)));
            assert!(r.is_err());
            let _ = e.wait();
        });
        crate::yield_now();
        a.kill_nowait();
        crate::yield_now();
        b.kill_nowait();
        crate::yield_now();
        assert!(thread::unusual(), "B's count is stale while A unwinds");
        assert!(a.join().unwrap_err().is_killed());
        // The hub polls (a sleep) after A's unwinding ended: B's count goes.
        crate::hub::time::sleep(Duration::from_millis(1));
        assert!(!thread::unusual(), "switches back on their fast path");
        ev.set();
        b.join().unwrap();
    }

    #[test]
    fn timed_out_joins_leave_no_callbacks_behind() {
        let sleeper = spawn(|| crate::hub::time::sleep(Duration::from_secs(60)));
        for _ in 0..1000 {
            assert!(matches!(
                sleeper.join_timeout(Duration::ZERO),
                Err(JoinError::TimedOut)
            ));
        }
        // No stale joiner, no boxed exit callbacks.
        assert!(sleeper.g.0.cold.on_exit.borrow().is_empty());
        assert!(sleeper.g.0.cold.joiner.borrow().is_none());
        sleeper.kill();
    }

    #[test]
    fn a_join_that_ends_early_leaves_no_handle_to_the_joiner_behind() {
        let sleeper = spawn(|| crate::hub::time::sleep(Duration::from_secs(60)));
        let g = sleeper.greenlet().clone();
        // Timed out.
        let g1 = g.clone();
        let a = spawn(move || wait_dead(&g1, Some(deadline_after(Duration::ZERO))).unwrap());
        let a_g = a.greenlet().clone();
        assert!(!a.join().unwrap());
        assert!(sleeper.g.0.cold.joiner.borrow().is_none());
        assert_eq!(std::rc::Rc::strong_count(&a_g.0), 1, "only our handle");
        // Unwound by a kill while joining.
        let g2 = g.clone();
        let b = spawn(move || wait_dead(&g2, None).unwrap());
        crate::hub::time::yield_now(); // b parks in the join
        assert!(sleeper.g.0.cold.joiner.borrow().is_some());
        b.kill();
        assert!(sleeper.g.0.cold.joiner.borrow().is_none());
        sleeper.kill();
    }

    #[test]
    fn timed_out_joins_behind_a_joiner_leave_no_callbacks_behind() {
        use crate::api::sync::registration::exit_callback_count;
        let sleeper = spawn(|| crate::hub::time::sleep(Duration::from_secs(60)));
        let g = sleeper.greenlet().clone();
        let first = spawn(move || wait_dead(&g, None).unwrap());
        crate::hub::time::yield_now(); // `first` holds the joiner slot
        for _ in 0..1000 {
            assert!(matches!(
                sleeper.join_timeout(Duration::ZERO),
                Err(JoinError::TimedOut)
            ));
        }
        // Withdrawn lazily: at most the last timed-out join's, behind one dispatcher.
        assert!(exit_callback_count(&sleeper.g) <= 1);
        assert_eq!(sleeper.g.0.cold.on_exit.borrow().len(), 1);
        sleeper.kill();
        assert!(first.join().unwrap());
    }

    #[test]
    fn two_joiners_are_both_woken() {
        let target = spawn(|| crate::hub::time::sleep(Duration::from_millis(20)));
        let g = target.greenlet().clone();
        let a = spawn({
            let g = g.clone();
            move || wait_dead(&g, None).unwrap()
        });
        let b = spawn(move || wait_dead(&g, None).unwrap());
        crate::hub::time::yield_now(); // both register: one in the slot, one as a callback
        assert_eq!(target.g.0.cold.on_exit.borrow().len(), 1);
        assert!(a.join().unwrap());
        assert!(b.join().unwrap());
        target.join().unwrap();
    }
}
