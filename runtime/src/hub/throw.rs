//! Kill, throw and timeout delivery: how a payload raised into a greenlet from elsewhere
//! reaches it, and what keeps a second one from aborting the process.
//!
//! A kill ([`GreenletExit`]), a timeout ([`Timeout`]) or any payload thrown into a
//! greenlet unwinds it at its switch point. Three things can get in the way, and this
//! module handles each:
//!
//! - **The greenlet is parked or yielded.** The throw is queued as its pending input
//!   ([`deliver`]); if a throw is pending already, the one that unwinds more wins
//!   ([`rank`]): a kill over any other throw over a timeout, and of two timeouts the
//!   outer one.
//! - **It is unwinding from an earlier throw** in a destructor that switched. Raised
//!   there, a second throw would unwind out of the destructor, and Rust aborts the
//!   process ("panic in a destructor during cleanup"). The throw is *held* instead:
//!   dropped if the greenlet dies, raised at its next switch point if it caught the
//!   first one and went on.
//! - **It is inside an `extern "C"` call** (a monkey-patched std call), which must not
//!   unwind. The hook catches the unwind and *defers* it ([`defer_unwind`]): the call
//!   fails, and the payload is raised at the next switch point.
//!
//! # State
//!
//! Per greenlet, kept in a side table ([`Throws`]) only while it is not `CLEAR`:
//!
//! | State | Meaning | Left when |
//! |---|---|---|
//! | `CLEAR` | No entry: nothing raised in it may be unwinding it, nothing waits for its switch points. | |
//! | `UNWINDING(n)` | The runtime raised `n` kills or timeouts in it ([`raise`]). While a panic is in progress on the thread, it is taken to be unwinding from one of them: a new throw for it is held. | a switch point or check with no panic in progress (`n` cleared: a new *episode* starts at the next raise); a timeout scope catching the last raised timeout (`n - 1`); its death. |
//! | `DEFERRED` | Throws wait to be raised at its next switch point, oldest first: *interrupting* ones (a hooked call failed because of them) and *held* ones. Combines with `UNWINDING`: none is raised while it unwinds. | the list empties; its death (the held ones are dropped; the oldest interrupting one decides its outcome if its function returns first). |
//!
//! Invariants: an entry exists exactly while `n > 0` or its list is non-empty, and a dead
//! greenlet has none. The thread's count of entries is the greenlet layer's *unusual*
//! counter: every switch point reads it with one load and comes here only when it is
//! not zero. A greenlet whose entry is *listed* had a throw held, or was found unwinding
//! at a switch point: the hub [`release`]s the listed ones at its next poll of timers and
//! IO with no panic in progress (none can be unwinding then), clearing `n` and raising
//! the held throws, for a greenlet that caught its throw and parked before a switch point
//! could.
//!
//! A timeout armed inside a destructor that an unwinding runs notes the episode: it fires
//! there only while that episode lasts, and is put off while a deeper throw seems to
//! unwind the greenlet ([`arm_timeout`](super::timeout::arm_timeout)).

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::panic::resume_unwind;
use std::rc::{Rc, Weak};

use crate::greenlet::error::GreenletExit;
use crate::greenlet::record::{Kind, Record, State};
use crate::greenlet::switch::{self, Input, Wake};
use crate::greenlet::thread::{self, Context, Thread};
use crate::greenlet::trampoline::{self, log_panic};
use crate::greenlet::value::Value;
use crate::greenlet::{Greenlet, Payload};
use crate::hub::timeout::Timeout;
use crate::hub::{Hub, try_with_hub, with_hub};

/// The throw state of one greenlet that is not `CLEAR` (see the module docs).
pub(super) struct Marks {
    /// A handle that does not keep it alive, to deliver its held throws (see [`list`]).
    g: Weak<Record>,
    /// `n`: kills and timeouts raised in it that may still be unwinding it.
    pub(super) raised: u8,
    /// Names the episode `raised` counts: new each time `raised` goes from 0 to 1.
    pub(super) episode: u64,
    /// The id of the last timeout raised in it that no scope has caught yet (0: none):
    /// catching it takes one off `raised`, a timeout caught and raised again does not.
    last_timeout: u64,
    /// Throws to raise at its next switch points, oldest first, with whether each made a
    /// hooked call fail (`true`: interrupting) or was held (`false`).
    deferred: Vec<(Payload, bool)>,
    /// Listed for [`release`].
    listed: bool,
}

impl Marks {
    fn is_clear(&self) -> bool {
        self.raised == 0 && self.deferred.is_empty()
    }
}

/// The hub's throw state: the entries of the greenlets that are not `CLEAR`, by id.
#[derive(Default)]
pub(crate) struct Throws {
    pub(super) marks: RefCell<HashMap<u64, Marks>>,
    /// Whether some entry may be listed (the hub calls [`release`] at its next poll).
    pub(crate) listed: Cell<bool>,
    next_episode: Cell<u64>,
}

impl Throws {
    /// Runs `f` on `g`'s entry, making one if it has none.
    fn with_entry<R>(&self, g: &Greenlet, f: impl FnOnce(&mut Marks) -> R) -> R {
        let mut marks = self.marks.borrow_mut();
        let m = marks.entry(g.id()).or_insert_with(|| {
            thread::unusual_added();
            Marks {
                g: Rc::downgrade(&g.0),
                raised: 0,
                episode: 0,
                last_timeout: 0,
                deferred: Vec::new(),
                listed: false,
            }
        });
        f(m)
    }

    /// Runs `f` on `id`'s entry if it has one, and removes the entry once it is clear.
    fn with_existing<R>(&self, id: u64, f: impl FnOnce(&mut Marks) -> R) -> Option<R> {
        let mut marks = self.marks.borrow_mut();
        let m = marks.get_mut(&id)?;
        let r = f(m);
        if m.is_clear() {
            marks.remove(&id);
            thread::unusual_removed();
        }
        Some(r)
    }

    /// `n` of `id` (0: `CLEAR` or only `DEFERRED`).
    fn raised(&self, id: u64) -> u8 {
        self.marks.borrow().get(&id).map_or(0, |m| m.raised)
    }

    /// Clears `n` of `id` (its unwinding is over).
    fn unmark(&self, id: u64) {
        self.with_existing(id, |m| {
            m.raised = 0;
            m.last_timeout = 0;
        });
    }

    /// Takes `id`'s oldest deferred throw that `matches` (given whether it interrupted a
    /// call). The caller drops or raises it, after the table's borrow has ended.
    fn take_where(&self, id: u64, matches: impl Fn(&Payload, bool) -> bool) -> Option<Payload> {
        self.with_existing(id, |m| {
            let i = m.deferred.iter().position(|(p, i)| matches(p, *i))?;
            Some(m.deferred.remove(i).0)
        })
        .flatten()
    }
}

/// Whether the greenlet layer counts any entry: the switch points' one load.
#[inline(always)]
fn any_marks() -> bool {
    thread::unusual()
}

/// Runs `f` with the hub's throw state, if the hub is still there.
pub(super) fn with_throws<R>(f: impl FnOnce(&Throws) -> R) -> Option<R> {
    try_with_hub(|h| f(&h.throws))
}

/// Whether a throw raised in `g` now could hit it while it unwinds from an earlier one
/// (in a destructor that switched), which would abort the process: it is `UNWINDING`
/// and a panic is in progress on the thread. With no panic in progress, its count is
/// cleared here (it caught its throws and went on).
pub(crate) fn unwinding_from_throw(g: &Greenlet) -> bool {
    if !any_marks() {
        return false;
    }
    with_throws(|t| {
        if t.raised(g.id()) == 0 {
            return false;
        }
        if std::thread::panicking() {
            return true;
        }
        t.unmark(g.id());
        false
    })
    .unwrap_or(false)
}

/// Adds `payload` to `g`'s deferred throws (`interrupted`: it made a hooked call fail).
fn push_deferred(t: &Throws, g: &Greenlet, payload: Payload, interrupted: bool) {
    t.with_entry(g, |m| m.deferred.push((payload, interrupted)));
}

/// Lists `g`'s entry for [`release`], with a weak handle to its record now (a suspended
/// greenlet whose last handle went lives on in a new record).
fn list(t: &Throws, g: &Greenlet) {
    t.with_entry(g, |m| {
        m.listed = true;
        m.g = Rc::downgrade(&g.0);
    });
    t.listed.set(true);
}

/// Holds `payload`, a throw for `g` while it is `UNWINDING`: raised at its next switch
/// point where it is not, dropped if it dies first; [`release`]d by the hub once no
/// unwinding is in progress, if it parked before such a switch point.
pub(crate) fn hold(g: &Greenlet, payload: Payload) {
    let _ = try_with_hub(move |h| {
        push_deferred(&h.throws, g, payload, false);
        list(&h.throws, g);
    });
}

/// Delivers the throws held for listed greenlets and clears their counts, once no panic
/// is in progress on the thread: none of them can be unwinding then. A greenlet that
/// caught its earlier throw and parked is woken with them (by [`deliver`], which keeps
/// the one that unwinds more). Called by the hub when it polls for timers and IO.
#[cold]
pub(crate) fn release(h: &Hub) {
    if std::thread::panicking() {
        return;
    }
    h.throws.listed.set(false);
    let listed: Vec<(u64, Weak<Record>)> = h
        .throws
        .marks
        .borrow_mut()
        .iter_mut()
        .filter(|(_, m)| m.listed)
        .map(|(id, m)| {
            m.listed = false;
            (*id, m.g.clone())
        })
        .collect();
    for (id, g) in listed {
        let Some(g) = g.upgrade().map(Greenlet::from_rc) else {
            continue;
        };
        if g.dead() || g.id() != id {
            continue;
        }
        h.throws.unmark(id);
        while let Some(p) = h.throws.take_where(id, |_, interrupted| !interrupted) {
            deliver(h, &g, p);
        }
    }
}

/// Stores `payload` (a kill or timeout caught where unwinding is impossible, such as
/// inside an `extern "C"` function) to be raised again at the current greenlet's next
/// switch point (`park`, `switch`, `sleep`, ...). Several deferred payloads are raised
/// one per switch point, oldest first. If the greenlet's function returns first, the
/// oldest decides its outcome (a deferred [`GreenletExit`] makes it count as killed).
///
/// The monkey patch uses this: a kill that reaches a greenlet parked in a hooked std
/// call makes the call fail (`ECANCELED`) and is raised again on the next switch.
///
/// # Examples
///
/// ```
/// let h = green::spawn(|| {
///     green::__net::defer_unwind(Box::new(green::GreenletExit));
///     // ... code that cannot unwind here runs on ...
///     green::yield_now(); // the deferred kill unwinds here
///     unreachable!()
/// });
/// assert!(h.join().unwrap_err().is_killed());
/// ```
pub fn defer_unwind(payload: Box<dyn Any + Send + 'static>) {
    with_hub(|h| push_deferred(&h.throws, &thread::current_greenlet(), payload, true))
}

/// Runs `f` with the current greenlet's deferred throws (see [`defer_unwind`]) set
/// aside, so that the switch points inside `f` do not raise them, and puts them back
/// afterwards, before any that `f` deferred itself (the oldest is raised first). A
/// throw that arrives while `f` parks still unwinds out of that park: catch it and
/// defer it.
///
/// A hook that must wait until a condition holds, whatever happens to its greenlet
/// (`Mutex::lock` cannot fail), parks through this: a kill then waits for the condition
/// and unwinds at the next switch point after the call, instead of making the wait spin.
///
/// ```
/// use std::time::{Duration, Instant};
/// let h = green::spawn(|| {
///     green::__net::defer_unwind(Box::new(green::GreenletExit));
///     let t = Instant::now();
///     // Without `hold_deferred` this park would raise the kill at once.
///     green::__net::hold_deferred(|| {
///         green::park::park(Some(Instant::now() + Duration::from_millis(20))).unwrap()
///     });
///     assert!(t.elapsed() >= Duration::from_millis(15));
///     green::yield_now(); // the kill unwinds here
///     unreachable!()
/// });
/// assert!(h.join().unwrap_err().is_killed());
/// ```
pub fn hold_deferred<R>(f: impl FnOnce() -> R) -> R {
    if !any_marks() || !thread::is_greenlet_context() {
        return f();
    }
    let g = thread::current_greenlet();
    let held = with_throws(|t| t.with_existing(g.id(), |m| std::mem::take(&mut m.deferred)))
        .flatten()
        .unwrap_or_default();
    if held.is_empty() {
        return f();
    }
    let _restore = Restore(g, Some(held));
    f()
}

/// Puts throws set aside by [`hold_deferred`] back in front of the greenlet's list
/// (also when the closure unwinds).
struct Restore(Greenlet, Option<Vec<(Payload, bool)>>);

impl Drop for Restore {
    fn drop(&mut self) {
        let Some(mut held) = self.1.take() else {
            return;
        };
        let g = &self.0;
        let _ = with_throws(|t| {
            t.with_entry(g, |m| {
                held.append(&mut m.deferred);
                m.deferred = held;
            })
        });
    }
}

/// Takes the current greenlet's oldest throw deferred by [`defer_unwind`] (one that made
/// a call fail), if any, for its outcome when its function returns. Held throws are not
/// taken: they go with it.
#[inline(always)]
pub(crate) fn take_interrupting() -> Option<Payload> {
    if !any_marks() {
        return None;
    }
    take_interrupting_slow()
}

#[cold]
fn take_interrupting_slow() -> Option<Payload> {
    try_with_hub(|h| {
        let id = thread::with_current(|g| g.core.id);
        h.throws.take_where(id, |_, interrupted| interrupted)
    })
    .flatten()
}

/// Raises the current greenlet's oldest deferred throw, if any (called at switch
/// points): one thread-local load when no greenlet of the thread has an entry.
#[inline(always)]
pub(crate) fn at_switch_point() {
    if any_marks() {
        at_switch_point_slow();
    }
}

/// Deferred throws wait while the greenlet is unwinding (a destructor that switches):
/// raised there, one would abort the process. A switch point outside an unwinding
/// clears a stale count (see [`unwinding_from_throw`]).
#[cold]
fn at_switch_point_slow() {
    let p = with_hub(|h| {
        let g = thread::current_greenlet();
        if unwinding_from_throw(&g) {
            // Unwinding, or it caught its throws while another greenlet unwinds: the hub
            // clears its count once no unwinding is in progress, in case it parks here
            // for good (every switch of the thread takes this slow path meanwhile).
            list(&h.throws, &g);
            return None;
        }
        h.throws.take_where(g.id(), |_, _| true)
    });
    if let Some(p) = p {
        raise(p);
    }
}

/// Whether `p` is a kill's or a timeout's payload: what [`raise`] counts.
pub(crate) fn is_kill_or_timeout(p: &Payload) -> bool {
    p.is::<Timeout>() || p.is::<GreenletExit>() || p.is::<Carried>()
}

/// A kill or a timeout that raises a payload of the user's instead of its own
/// (`JoinHandle::kill_with`, a timeout made with an error): delivered, ranked, held and
/// counted as the kill or timeout it is, and raised as `payload` ([`raise`] unwraps it).
/// Never seen outside this module's delivery: a greenlet that has not started gets the
/// payload itself (it dies unstarted, nothing is raised).
pub(crate) struct Carried {
    /// `None`: a kill; `Some`: this timeout.
    pub(crate) timeout: Option<Timeout>,
    pub(crate) payload: Payload,
}

/// The timeout `p` is (a plain one, or one carrying a payload), if it is one.
fn as_timeout(p: &Payload) -> Option<&Timeout> {
    match p.downcast_ref::<Timeout>() {
        Some(t) => Some(t),
        None => p.downcast_ref::<Carried>().and_then(|c| c.timeout.as_ref()),
    }
}

/// `p` as it is raised: a [`Carried`] throw's own payload, anything else as it is.
fn unwrap_carried(p: Payload) -> Payload {
    match p.downcast::<Carried>() {
        Ok(c) => c.payload,
        Err(p) => p,
    }
}

/// Unwinds the current greenlet with `p`, a throw the runtime delivers at a switch
/// point, counting a kill or a timeout (`UNWINDING`). Other payloads (a raw throw of the
/// user's, a child's panic) are left uncounted: code commonly catches them with
/// `catch_unwind`, which the runtime cannot see, and a count left standing would hold
/// the greenlet's later throws while another greenlet unwinds.
#[cold]
pub(crate) fn raise(p: Payload) -> ! {
    if is_kill_or_timeout(&p) {
        let timeout = as_timeout(&p).map(|t| t.id);
        let _ = try_with_hub(|h| {
            let g = thread::current_greenlet();
            let t = &h.throws;
            t.with_entry(&g, |m| {
                if m.raised == 0 {
                    m.episode = t.next_episode.get().wrapping_add(1);
                    t.next_episode.set(m.episode);
                }
                m.raised = m.raised.saturating_add(1);
                // A kill means no timeout raised earlier is still unwinding it (it would
                // have been held): catching such a timeout again must not count.
                m.last_timeout = timeout.unwrap_or(0);
            });
        });
    }
    resume_unwind(unwrap_carried(p))
}

/// Raises `p` in the current greenlet (a kill or throw of its own), unless it is
/// unwinding from a kill or timeout (a destructor calling it): then `p` is held like a
/// throw from elsewhere (raised there, it would abort the process), and this returns.
pub(crate) fn raise_here(p: Payload) {
    let me = try_with_hub(|_| thread::current_greenlet());
    match me {
        Some(g) if unwinding_from_throw(&g) => hold(&g, p),
        _ => raise(p),
    }
}

/// Drops `g`'s entry, for a greenlet that died (its held throws go with it; it would
/// keep every switch point of the thread on its slow path while its record lives on).
#[inline]
pub(crate) fn forget(g: &Record) {
    if any_marks() {
        forget_slow(g.core.id);
    }
}

#[cold]
fn forget_slow(id: u64) {
    let gone = with_throws(|t| {
        let gone = t.marks.borrow_mut().remove(&id);
        if gone.is_some() {
            thread::unusual_removed();
        }
        gone
    });
    // Dropped after the table's borrow: the payloads may run user code.
    drop(gone);
}

/// How far a throw unwinds, to choose between two due at once: a kill above any other
/// throw above a timeout; timeouts by age, the oldest (outermost) highest.
fn rank(p: &Payload) -> (u8, u64) {
    if let Some(t) = as_timeout(p) {
        (0, u64::MAX - t.id)
    } else if p.is::<GreenletExit>() || p.is::<Carried>() {
        (2, 0)
    } else {
        (1, 0)
    }
}

/// What a greenlet switched to with `input` resumes with when the throw `pending` was
/// queued for it: the pending throw, unless `input` is a throw too (a child's panic
/// reaching its parent) that unwinds at least as far (see [`rank`]): a timeout whose
/// scope the child's panic unwinds anyway loses to it, a kill does not. The loser (a
/// plain value, or the other throw) is dropped.
pub(crate) fn pending_or_input(pending: Payload, input: Input) -> Input {
    match input {
        Input::Throw(q) if rank(&q) >= rank(&pending) => Input::Throw(q),
        _ => Input::Throw(pending),
    }
}

/// Raises `p` in `g` at its switch point, the next time the hub runs it: queued as its
/// pending input, or held if it is `UNWINDING` (see the module docs). Does nothing for a
/// dead greenlet or the hub.
pub(crate) fn deliver(h: &Hub, g: &Greenlet, p: Payload) {
    // (Never `UNWINDING` when dead or the hub: neither has an entry.)
    if unwinding_from_throw(g) {
        // Another throw would unwind out of the destructor that switched and abort the
        // process. Held, in case the greenlet caught the first and goes on.
        hold(g, p);
    } else {
        deliver_now(h, g, p);
    }
}

/// [`deliver`] without holding the throw for a greenlet that is unwinding: for a timeout
/// armed inside the destructor that unwinding runs (its scope is there, so raising it
/// there is what its owner expects). Of two throws pending, the one that unwinds more
/// stays (see [`rank`]).
pub(crate) fn deliver_now(h: &Hub, g: &Greenlet, p: Payload) {
    if g.dead() || g.0.core.kind == Kind::Hub {
        return;
    }
    // Not started: it dies unstarted, with the payload as its outcome (nothing is
    // raised, so nothing is counted).
    let p = if g.0.core.state.get() == State::Fresh {
        unwrap_carried(p)
    } else {
        p
    };
    let pending = g.0.peek_rich_pending(|i| match i {
        Input::Throw(q) => Some(rank(q)),
        _ => None,
    });
    if let Some(pending) = pending.flatten() {
        // Only a throw that unwinds more replaces it (still queued: only the input
        // changes).
        if rank(&p) > pending {
            g.0.set_pending(Input::Throw(p));
        }
        return;
    }
    if !g.0.set_pending(Input::Throw(p)) {
        h.push_ready(g.clone());
    }
}

/// Raises `payload` in `g` at its switch point, the next time the hub runs it.
///
/// This is how kills and timeouts reach a greenlet that is parked or switched away.
/// A greenlet not yet started dies without running. Does nothing on a dead greenlet.
/// To raise in the calling greenlet itself, use [`std::panic::resume_unwind`].
///
/// # Examples
///
/// ```
/// let h = green::spawn(|| green::sleep(std::time::Duration::from_secs(60)));
/// green::yield_now(); // let it start sleeping
/// green::throw_into(h.greenlet(), Box::new(green::GreenletExit));
/// assert!(h.join().unwrap_err().is_killed());
/// ```
pub fn throw_into(g: &Greenlet, payload: Box<dyn Any + Send + 'static>) {
    with_hub(|h| deliver(h, g, payload));
}

/// What an orphan (a suspended greenlet whose last handle went) or a greenlet still
/// alive at thread exit is resumed with: a kill, or, if it is already unwinding from a
/// throw (its destructor switched), a plain wake that lets that destructor and the
/// unwinding go on.
pub(crate) fn kill_input(g: &Greenlet) -> Input {
    if unwinding_from_throw(g) {
        // Held too: if it only seemed to be unwinding (it caught its throw while
        // another greenlet unwinds), the kill still comes, once that unwinding ends.
        hold(g, Box::new(GreenletExit));
        Input::Wake(Wake::Unparked)
    } else {
        Input::Throw(Box::new(GreenletExit))
    }
}

/// Unwinds `g`, a suspended greenlet whose last handle went (see `Record`'s `Drop`). The
/// main greenlet unwinds it at once, its death coming back to main; anywhere else (a
/// greenlet, the hub) the hub does, next.
pub(crate) fn kill_orphan(h: &Hub, t: &Thread, g: Greenlet) {
    // (Main's state is `Suspended` exactly while the trampoline runs.)
    if thread::context() == Context::Main && t.main.0.core.state.get() == State::Running {
        *g.0.cold.parent.borrow_mut() = Some(t.main.clone());
        let out = trampoline::drive(t, h, g.clone(), kill_input(&g));
        if g.dead() {
            if let Input::Throw(p) = out {
                log_panic(Some(&g), p.as_ref());
            }
        } else {
            // Main came back for another reason while the orphan, still unwinding,
            // waits (its destructors switch): the orphan finishes under the hub, and a
            // kill or timeout meant for main waits for main in the ready queue, raised
            // when main next switches away and is resumed.
            *g.0.cold.parent.borrow_mut() = Some(t.hub.clone());
            if let Input::Throw(p) = out {
                deliver(h, &t.main, p);
            }
        }
    } else {
        *g.0.cold.parent.borrow_mut() = Some(t.hub.clone());
        let input = kill_input(&g);
        if !g.0.set_pending(input) {
            h.push_ready(g);
        }
    }
}

impl Greenlet {
    /// Raises [`GreenletExit`] in this greenlet at its switch point (switching to it now);
    /// returns what is switched back, normally the `GreenletExit` value its death passes
    /// to its parent. A greenlet not yet started dies without running.
    ///
    /// On a dead greenlet nothing runs and nothing is switched to; the result is the
    /// `GreenletExit` value, as from greenlet's `throw()` into a dead greenlet (see
    /// [`throw_with`](Greenlet::throw_with)).
    ///
    /// ```
    /// use green::{getcurrent, Greenlet, GreenletExit, Value};
    /// let main = getcurrent();
    /// let g = Greenlet::new(move |_: Value| { main.switch(()); unreachable!() });
    /// g.switch(());
    /// assert!(g.throw().is::<GreenletExit>());
    /// assert!(g.dead());
    /// assert!(g.throw().is::<GreenletExit>()); // dead: the same answer, nothing runs
    /// ```
    pub fn throw(&self) -> Value {
        self.throw_with(Box::new(GreenletExit))
    }

    /// Raises `payload` (a panic payload) in this greenlet at its switch point. Anything
    /// but [`GreenletExit`] that the greenlet does not catch propagates to its parent.
    ///
    /// A dead greenlet cannot catch anything: the throw ends as one the greenlet did not
    /// catch, without a switch. [`GreenletExit`] comes back as the value (greenlet's
    /// `throw()` into a dead greenlet returns it too), and any other payload is raised
    /// in the caller, with [`std::panic::resume_unwind`]: where it would reach a parent
    /// that is the caller. (greenlet switches to the dead greenlet's parent instead,
    /// which is the caller in the common case.)
    ///
    /// ```
    /// use green::{getcurrent, Greenlet, Value};
    /// let main = getcurrent();
    /// let g = Greenlet::new(move |_: Value| {
    ///     let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| { main.switch(()); }));
    ///     *r.unwrap_err().downcast::<&str>().unwrap()
    /// });
    /// g.switch(());
    /// assert_eq!(g.throw_with(Box::new("oops")).get::<&str>(), Ok("oops"));
    /// // Dead now: the payload comes back to the caller as a panic.
    /// let again = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
    ///     g.throw_with(Box::new("again"))
    /// }));
    /// assert_eq!(again.unwrap_err().downcast_ref::<&str>(), Some(&"again"));
    /// ```
    pub fn throw_with(&self, payload: Box<dyn Any + Send + 'static>) -> Value {
        if self.dead() {
            return thrown_into_dead(payload);
        }
        // The hub counts the throw where it is raised (see [`raise`]): it must be there.
        with_hub(|_| ());
        if self.is_current() {
            raise_here(payload);
            return Value::none();
        }
        if unwinding_from_throw(self) {
            // Its destructor switched while an earlier throw unwinds it: raised there,
            // this one would abort the process. Held (dropped if it dies, raised if it
            // goes on), and the switch is a plain one, unless its destructor waits in
            // the hub (a plain switch would be refused): it is left to the hub then.
            hold(self, payload);
            if self.0.core.state.get().in_hub() {
                return Value::none();
            }
            return switch::into_value(switch::switch_to(self, Input::Value(Value::none())));
        }
        switch::into_value(switch::switch_to(self, Input::Throw(payload)))
    }

    /// The same as [`throw`](Greenlet::throw): kill this greenlet now.
    ///
    /// ```
    /// let g = green::Greenlet::new(|_: green::Value| unreachable!());
    /// g.kill(); // never started: it dies without running
    /// assert!(g.dead());
    /// ```
    pub fn kill(&self) -> Value {
        self.throw()
    }
}

/// What a throw into a dead greenlet gives (see [`Greenlet::throw_with`]): a kill's
/// [`GreenletExit`] as the value, any other payload raised in the caller.
#[cold]
fn thrown_into_dead(p: Payload) -> Value {
    match p.downcast::<GreenletExit>() {
        Ok(exit) => Value::new(*exit),
        Err(p) => resume_unwind(p),
    }
}

/// Withdraws the timeout `id` from `g` after its scope ended: a throw its timer already
/// queued (the guard was dropped by another greenlet before `g` ran) and one deferred
/// by a hooked call. The queued throw is replaced by a spurious wake, not removed: a
/// wake that lost the race against the throw (same timer batch) would otherwise be
/// lost, and every park caller re-checks its condition after a spurious wake.
pub(crate) fn withdraw_timeout(g: &Greenlet, id: u64) {
    let ours = |p: &Payload| as_timeout(p).is_some_and(|t| t.id == id);
    // The greenlet stays in the ready queue either way: only its input changes.
    match g.0.take_pending() {
        Some(Input::Throw(p)) if ours(&p) => {
            g.0.set_pending(Input::Wake(Wake::Unparked));
        }
        Some(other) => {
            g.0.set_pending(other);
        }
        None => {}
    }
    if any_marks() {
        let deferred = with_throws(|t| t.take_where(g.id(), |p, _| ours(p))).flatten();
        drop(deferred);
    }
}

/// Takes the timeout `id` if it fired inside a hooked call of `g` and was deferred.
pub(crate) fn take_deferred_timeout(g: &Greenlet, id: u64) -> Option<Timeout> {
    if !any_marks() {
        return None;
    }
    let p = with_throws(|t| {
        t.take_where(g.id(), |p, interrupted| {
            interrupted && p.downcast_ref::<Timeout>().is_some_and(|t| t.id == id)
        })
    })
    .flatten()?;
    p.downcast::<Timeout>().ok().map(|t| *t)
}

/// A timeout scope of the current greenlet caught the timeout `id`: if it is the one the
/// runtime last raised in it, one fewer may be unwinding it.
pub(crate) fn timeout_caught(id: u64) {
    if !any_marks() {
        return;
    }
    let _ = try_with_hub(|h| {
        let me = thread::with_current(|g| g.core.id);
        let t = &h.throws;
        let last = t
            .with_existing(me, |m| {
                if m.last_timeout != id {
                    return false;
                }
                m.last_timeout = 0;
                if m.raised > 1 {
                    m.raised -= 1;
                    return false;
                }
                m.raised != 0
            })
            .unwrap_or(false);
        if last {
            t.unmark(me);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_kill_outranks_a_throw_which_outranks_a_timeout_the_outer_timeout_first() {
        let kill: Payload = Box::new(GreenletExit);
        let other: Payload = Box::new("boom");
        let (outer, inner) = (Timeout::new(Duration::ZERO), Timeout::new(Duration::ZERO));
        let (outer, inner): (Payload, Payload) = (Box::new(outer), Box::new(inner));
        assert!(rank(&kill) > rank(&other));
        assert!(rank(&other) > rank(&outer));
        assert!(rank(&outer) > rank(&inner));
        // Carrying a payload of the user's changes neither.
        let carried_kill: Payload = Box::new(Carried {
            timeout: None,
            payload: Box::new("mine"),
        });
        let t = Timeout::new(Duration::ZERO);
        let carried_timeout: Payload = Box::new(Carried {
            timeout: Some(t),
            payload: Box::new(5u8),
        });
        let plain: Payload = Box::new(t);
        assert_eq!(rank(&carried_kill), rank(&kill));
        assert_eq!(rank(&carried_timeout), rank(&plain));
        assert!(is_kill_or_timeout(&carried_kill) && is_kill_or_timeout(&carried_timeout));
    }
}
