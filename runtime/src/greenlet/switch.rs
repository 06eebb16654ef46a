//! The driver: the loop that resumes greenlets, running on the thread's own stack.
//!
//! corosensei coroutines are asymmetric: a coroutine can only suspend back to the code
//! that resumed it. Greenlets are symmetric. The driver bridges the two: every greenlet
//! is resumed by the driver, and a greenlet that switches *suspends* with a [`Request`]
//! naming where to go next; the driver resumes that target. The driver runs in the frame
//! of the main greenlet's blocking call and returns when the main greenlet is chosen.
//!
//! "Switching to the hub" means: let the driver pick the next ready greenlet, firing
//! timers and polling the reactor when none is ready (see [`crate::hub`]).

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr;
use std::rc::Rc;
use std::time::Instant;

use corosensei::{CoroutineResult, Yielder};

use crate::greenlet::error::{BlockError, GreenletExit, SwitchError, payload_str};
use crate::greenlet::record::{Kind, State};
use crate::greenlet::value::Value;
use crate::greenlet::word::{self, Word};
use crate::greenlet::{Greenlet, Payload};
use crate::hub::park::Wake;
use crate::hub::{self, CTX_GREENLET, CTX_HUB, CTX_MAIN, Hub, with_hub};

/// What a greenlet is resumed with.
pub(crate) enum Input {
    /// A value passed by `switch` (or the argument of the first switch).
    Value(Value),
    /// The end of a park.
    Wake(Wake),
    /// A panic payload to raise at the switch point (kill, timeout, a child's panic).
    Throw(Payload),
    /// Only for the main greenlet: nothing will ever be ready again (gevent's LoopExit).
    LoopExit,
    /// Only for a greenlet whose explicit switch was refused (see [`refuse_switch`]):
    /// why, and the value it tried to pass, given back to be dropped in its own context.
    Refused(Box<Refused>),
}

/// A refused switch, on its way back to the greenlet that asked for it.
pub(crate) struct Refused {
    pub(crate) error: SwitchError,
    pub(crate) value: Value,
}

/// What a greenlet that waits asks the driver to do. (An explicit switch sends its
/// request as a word directly: `word::REQ_MAIN` or `word::REQ_SWITCH` with the input.)
#[derive(Clone, Copy)]
pub(crate) enum Request {
    /// Run whatever is ready (the caller parked, or switched to the hub).
    Park,
    /// Queue the caller behind every ready greenlet, then run them (`yield_now`). The
    /// driver queues it, with the handle it already holds: no handle to clone.
    Yield,
}

/// What a greenlet's coroutine returns: a value for its parent, or a panic.
pub(crate) type Output = Result<Value, Payload>;

thread_local! {
    /// The yielder of the greenlet running on this thread (null in the main greenlet).
    static YIELDER: Cell<*const Yielder<usize, usize>> = const { Cell::new(ptr::null()) };
}

/// Called first thing by a starting greenlet: records its yielder (fixed for the
/// coroutine's life, it lives at the bottom of the coroutine's stack).
#[inline]
pub(crate) fn set_yielder(y: &Yielder<usize, usize>) {
    YIELDER.with(|c| c.set(y));
    hub::with_current(|g| g.core.yielder.set(y));
}

/// Suspends the running greenlet's coroutine with the request word `req`.
///
/// Only in greenlet context (the caller checked).
#[inline(always)]
fn suspend_word(req: Word) -> Word {
    let y = YIELDER.with(|c| c.get());
    debug_assert!(!y.is_null());
    // SAFETY: in greenlet context the driver set YIELDER to the running coroutine's
    // yielder, which lives on that coroutine's stack for as long as it runs; we are
    // on that stack now, so the pointer is valid and suspending is allowed.
    unsafe { (*y).suspend(req) }
}

/// Leaves the current greenlet with `req`; returns the input it is resumed with, as a
/// word (see [`crate::greenlet::word`]): parks and yields look at the word and decode only a
/// rich input.
///
/// Callers make sure the current context is not the hub.
#[inline(always)]
pub(crate) fn suspend(req: Request) -> Word {
    if hub::context() == CTX_GREENLET {
        suspend_word(word::pack_request(req))
    } else {
        suspend_main(req)
    }
}

/// [`suspend`] in the main greenlet: run the driver until main is switched to.
#[inline(never)]
fn suspend_main(req: Request) -> Word {
    with_hub(|h| {
        if let Request::Yield = req {
            queue_yielded(h, h.main.clone());
        }
        // A park or yield of main leads to the hub (the driver handles a greenlet's in
        // `after_resume`): the driver starts with the hub's step, picking what runs next.
        debug_assert!(h.main.0.core.state.get() == State::Running, "nested driver");
        h.main.0.core.state.set(match req {
            Request::Park => State::Parked,
            Request::Yield => State::Yielded,
        });
        let _guard = DriverGuard(h);
        if h.monitoring.get() {
            h.monitor.record_hub();
        }
        let (target, input) = schedule_next(h);
        run_loop(h, target, input)
    })
}

/// Switches from the current greenlet to `target` with `input`.
///
/// Inlined into the caller, with no closure or call frame live across the coroutine
/// switch: a frame entered before a switch and left after it ends in a `ret` that the
/// CPU's return-stack predictor gets wrong (the other stack's calls filled it), and a
/// few of those cost more than the switch itself.
#[inline(always)]
pub(crate) fn switch_to(target: &Greenlet, input: Input) -> Input {
    check_can_switch();
    word::unpack_input(switch_word(target, word::pack_input(input)))
}

/// [`switch_to`] passing a value and returning what the greenlet is switched back with
/// as a value (`Greenlet::switch`): the common small values never become an `Input`.
#[inline(always)]
pub(crate) fn switch_value(target: &Greenlet, v: Value) -> Value {
    check_can_switch();
    word::value_of(switch_word(target, word::pack_value(v)))
}

/// [`switch_value`] reporting a refusal instead of panicking (`Greenlet::try_switch`).
#[inline]
pub(crate) fn try_switch_value(target: &Greenlet, v: Value) -> Result<Value, SwitchError> {
    if hub::context() == CTX_HUB {
        return Err(SwitchError::InHub);
    }
    let w = switch_word(target, word::pack_value(v));
    if !word::is_rich(w) {
        return Ok(word::value_of(w));
    }
    match word::unpack_input(w) {
        Input::Refused(r) => {
            let Refused { error, value } = *r;
            drop(value);
            Err(error)
        }
        input => Ok(into_value(input)),
    }
}

/// Panics in the hub, where switching is not allowed.
#[inline(always)]
fn check_can_switch() {
    if hub::context() == CTX_HUB {
        hub_switch_panic();
    }
}

/// [`switch_to`] with the input as its word.
#[inline(always)]
fn switch_word(target: &Greenlet, input: Word) -> Word {
    if hub::is_current(target) {
        return input;
    }
    crate::hub::throw::at_switch_point();
    if hub::context() == CTX_GREENLET {
        let req = if target.0.core.kind == Kind::Main {
            word::REQ_MAIN | input
        } else {
            word::set_target(target.clone());
            word::REQ_SWITCH | input
        };
        suspend_word(req)
    } else {
        // SAFETY: the hub lives until the thread's thread-locals are destroyed, and this
        // reference is used only during this call (a `with_hub` closure would be a frame
        // spanning the switch, see above).
        let h = unsafe { &*hub::hub_ptr() };
        switch_from_main(h, target, input)
    }
}

#[cold]
#[inline(never)]
fn hub_switch_panic() -> ! {
    panic!("green: {}", SwitchError::InHub);
}

/// Refuses an explicit switch into `target` if it waits in the hub (parked or yielded)
/// and the switch passes a value (a throw still goes in: it unwinds the target at its
/// park): `Ok` with the refusal as the switcher's input word, the value it passed inside
/// to be dropped there. `Err` with the input word, unchanged, otherwise.
///
/// Resuming the target would only end its wait early for nothing (the wait goes on at
/// once) and leave the switcher suspended with nobody to switch back to it.
#[cold]
#[inline(never)]
fn refuse_switch(target: &Greenlet, input: Word) -> Result<Word, Word> {
    let state = target.0.core.state.get();
    if !state.in_hub() {
        return Err(input);
    }
    let value = match word::unpack_input(input) {
        Input::Value(v) => v,
        other => return Err(word::pack_input(other)),
    };
    let (id, name) = (target.id(), target.name().map(String::from));
    let error = match state {
        State::Yielded => SwitchError::Yielded { id, name },
        _ => SwitchError::Parked { id, name },
    };
    Ok(word::pack_input(Input::Refused(Box::new(Refused {
        error,
        value,
    }))))
}

/// The driver's step after `g` asked to switch to `target` (which waits in the hub):
/// back to `g` with the refusal, or on to `target` if it is not refused.
#[cold]
#[inline(never)]
fn refuse_or_switch(g: Greenlet, target: Greenlet, input: Word) -> (Greenlet, Word) {
    match refuse_switch(&target, input) {
        Ok(refused) => (g, refused),
        Err(input) => (target, input),
    }
}

/// Queues a greenlet that yielded, ending its park (see [`crate::hub::park::end_park`]):
/// unparkers made before the yield are stale. One already queued (it unparked itself
/// before yielding) keeps its place and its input.
#[inline(always)]
fn queue_yielded(h: &Hub, g: Greenlet) {
    let i = &g.0;
    i.core.park_seq.set(i.core.park_seq.get().wrapping_add(1));
    crate::hub::budget::restart(i);
    if !i.has_pending() {
        i.set_pending(Input::Wake(Wake::Unparked));
        h.push_ready(g);
    }
}

/// The main greenlet (outside the driver) switches to `target`.
///
/// Fast path for the commonest explicit switch: `target` is a suspended greenlet that
/// switches straight back to main. Then no driver loop is entered: main resumes the
/// coroutine and gets its answer, as a plain corosensei resume would. Anything else
/// (a fresh, dead or queued target, a target that switches elsewhere, parks or returns)
/// continues in [`drive`].
#[inline(always)]
fn switch_from_main(h: &Hub, target: &Greenlet, input: Word) -> Word {
    let t = &target.0;
    if t.core.kind != Kind::Coro || t.core.state.get() != State::Suspended || t.has_pending() {
        return switch_from_main_slow(h, target, input);
    }
    debug_assert!(
        h.main.0.core.state.get() == State::Running,
        "main switches while the driver runs"
    );
    h.main.0.core.state.set(State::Suspended);
    enter(h, target);
    // SAFETY: as in `run`: only the driver (here: main outside the driver loop, which is
    // where the driver would run) resumes coroutines; `target` is suspended, so it is not
    // running and has its coroutine; the caller's `&Greenlet` keeps it alive meanwhile.
    let r = unsafe { resume_coroutine(target, input) };
    if let Some(w) = back_to_main(&r) {
        t.core.state.set(State::Suspended);
        let input = main_resumes(h, word::request_input(w));
        main_runs(h);
        return input;
    }
    // Anything else: finish this step as `run` does, then go on in the driver loop.
    leave(h);
    let (next, i) = after_resume(h, target.clone(), r);
    drive_loop(h, next, i)
}

/// [`switch_from_main`] for a target that is not simply suspended: refused if it waits
/// in the hub, else run by the driver loop.
#[cold]
#[inline(never)]
fn switch_from_main_slow(h: &Hub, target: &Greenlet, input: Word) -> Word {
    match refuse_switch(target, input) {
        Ok(refused) => refused,
        Err(input) => drive_from_main(h, target.clone(), input),
    }
}

/// The request word of a coroutine that suspended to switch to main, if it did.
#[inline(always)]
fn back_to_main(r: &CoroutineResult<Word, Word>) -> Option<Word> {
    match *r {
        CoroutineResult::Yield(w) if word::request_kind(w) == word::REQ_MAIN => Some(w),
        _ => None,
    }
}

/// What an explicit `switch` returns for the input it was resumed with.
#[inline(always)]
pub(crate) fn into_value(input: Input) -> Value {
    match input {
        Input::Value(v) => v,
        Input::Wake(_) => Value::none(),
        Input::Throw(p) => crate::hub::throw::raise(p),
        Input::LoopExit => panic!("green: LoopExit: {}", BlockError::WouldBlockForever),
        Input::Refused(r) => refused_panic(*r),
    }
}

/// `Greenlet::switch`'s panic for a refused switch.
#[cold]
#[inline(never)]
fn refused_panic(r: Refused) -> ! {
    let Refused { error, value } = r;
    drop(value);
    panic!("green: {error}");
}

/// What `yield_now` does with the input it is resumed with: a kill unwinds; anything
/// else (the wake, a value switched in explicitly) ends the yield.
#[inline(always)]
pub(crate) fn after_yield(input: Word) {
    // Only a rich input needs decoding (and dropping); the rest owns nothing.
    if word::is_rich(input) {
        after_yield_rich(word::unpack_input(input));
    }
}

#[cold]
fn after_yield_rich(input: Input) {
    match input {
        Input::Throw(p) => crate::hub::throw::raise(p),
        // Main is queued when it yields, so the hub always has something to run: no
        // `LoopExit`. (Explicit switches into a yielding greenlet are refused.)
        Input::Value(_) | Input::Wake(_) | Input::LoopExit | Input::Refused(_) => {}
    }
}

/// Resets the hub to "main is running" even if the driver unwinds.
struct DriverGuard<'a>(&'a Hub);

impl Drop for DriverGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        main_runs(self.0);
    }
}

/// Marks the main greenlet as the running one (leaving the driver).
#[inline(always)]
fn main_runs(h: &Hub) {
    h.main.0.core.state.set(State::Running);
    h.set_current(&h.main);
    hub::set_context(CTX_MAIN);
}

/// The main greenlet is switched to with `input`; returns what it resumes with. A
/// queue entry it left is stale now, except that a kill or timeout waiting there wins
/// over the value of an explicit switch (as for any greenlet, see `resume_unusual`).
/// An attached monitor counts the switch.
#[inline(always)]
fn main_resumes(h: &Hub, input: Word) -> Word {
    let input = if h.main.0.has_pending() {
        main_pending(h, input)
    } else {
        input
    };
    // For `sync::monitor`: main resumes (see `enter`).
    if h.monitoring.get() {
        h.monitor.count_switch();
        h.monitor.record(&h.main);
    }
    input
}

#[cold]
fn main_pending(h: &Hub, input: Word) -> Word {
    match h.main.0.take_pending() {
        Some(Input::Throw(p)) => word::pack_input(crate::hub::throw::pending_or_input(
            p,
            word::unpack_input(input),
        )),
        _ => input,
    }
}

/// Runs greenlets, starting by resuming `target` with `input`, until the main greenlet is
/// switched to; returns what it was switched to with. Runs on the thread's own stack.
pub(crate) fn drive(h: &Hub, target: Greenlet, input: Input) -> Input {
    word::unpack_input(drive_from_main(h, target, word::pack_input(input)))
}

/// [`drive`] with words in and out.
fn drive_from_main(h: &Hub, target: Greenlet, input: Word) -> Word {
    debug_assert!(h.main.0.core.state.get() == State::Running, "nested driver");
    h.main.0.core.state.set(State::Suspended);
    drive_loop(h, target, input)
}

/// The loop of [`drive`], once the driver is marked as running. Inputs travel through
/// it as words (see [`crate::greenlet::word`]): the one in flight keeps anything rich in the hub's
/// side slot.
fn drive_loop(h: &Hub, target: Greenlet, input: Word) -> Word {
    let _guard = DriverGuard(h);
    if h.monitoring.get() {
        h.monitor.record_hub();
    }
    run_loop(h, target, input)
}

/// The loop of [`drive_loop`], once its guard is set.
#[inline(always)]
fn run_loop(h: &Hub, mut target: Greenlet, mut input: Word) -> Word {
    loop {
        match target.0.core.kind {
            Kind::Coro => (target, input) = resume(h, target, input),
            Kind::Main => return main_resumes(h, input),
            Kind::Hub => {
                if word::is_rich(input) {
                    hub_input(word::unpack_input(input));
                }
                (target, input) = schedule_next(h);
            }
        }
    }
}

/// Something rich switched to the hub: a panic of a greenlet whose parent is the hub,
/// which nobody catches, is logged; anything else is dropped.
#[cold]
fn hub_input(input: Input) {
    if let Input::Throw(p) = input {
        log_panic(None, p.as_ref());
    }
}

/// The driver's step when the hub is switched to: the next ready greenlet, or the main
/// greenlet with `LoopExit` when nothing can ever become ready.
#[inline(always)]
fn schedule_next(h: &Hub) -> (Greenlet, Word) {
    h.set_current(&h.hub);
    hub::set_context(CTX_HUB);
    pick_next(h)
}

/// [`schedule_next`] once the hub is marked as running (right after [`leave`]).
#[inline(always)]
fn pick_next(h: &Hub) -> (Greenlet, Word) {
    match next_ready(h) {
        Some(next) => next,
        None => (h.main.clone(), word::pack_input(Input::LoopExit)),
    }
}

/// Resumes one greenlet; returns where to go next and with what.
#[inline(always)]
fn resume(h: &Hub, g: Greenlet, input: Word) -> (Greenlet, Word) {
    if !g.0.core.state.get().resumable() || g.0.has_pending() {
        if !plain_start(&g, input) {
            return resume_unusual(h, g, input);
        }
        if g.0.cold.start_timer.get().is_some() {
            disarm_early_start(&g);
        }
    }
    run(h, g, input)
}

/// A `spawn_later` greenlet started early (switched to): its start timer would keep the
/// hub from reporting that nothing can wake until it fires.
#[cold]
#[inline(never)]
fn disarm_early_start(g: &Greenlet) {
    crate::hub::timer::cancel_start(g);
}

/// Whether resuming `g` with `input` starts it as a suspended greenlet is resumed: it has
/// not started, is not queued, and is not started with a throw (that kills it unstarted).
#[inline(always)]
fn plain_start(g: &Greenlet, input: Word) -> bool {
    g.0.core.state.get() == State::Fresh && !g.0.has_pending() && !word::is_rich(input)
}

/// Runs `g`, a started greenlet that is not running, until it suspends or returns.
#[inline(always)]
fn run(h: &Hub, g: Greenlet, input: Word) -> (Greenlet, Word) {
    enter(h, &g);
    // SAFETY: the driver is the only code touching a greenlet's coroutine while the
    // greenlet lives, and `g` is not running (only one greenlet runs at a time and the
    // driver runs none now); `g` stays alive (we own a handle) while `co` is used. A
    // greenlet that is not dead has its coroutine.
    let r = unsafe { resume_coroutine(&g, input) };
    leave(h);
    after_resume(h, g, r)
}

/// Where to go after `g` suspended with a request or returned.
#[inline(always)]
fn after_resume(h: &Hub, g: Greenlet, r: CoroutineResult<Word, Word>) -> (Greenlet, Word) {
    match r {
        CoroutineResult::Yield(req) => match word::request_kind(req) {
            // Straight to the next ready greenlet, without a trip through the loop.
            // (`leave` has marked the hub as running.)
            word::REQ_PARK => {
                g.0.core.state.set(State::Parked);
                pick_next(h)
            }
            word::REQ_YIELD => {
                g.0.core.state.set(State::Yielded);
                queue_yielded(h, g);
                pick_next(h)
            }
            // An explicit switch: refused if the target waits in the hub. (Main is
            // `Suspended` here unless it parked or yielded.)
            word::REQ_MAIN => {
                g.0.core.state.set(State::Suspended);
                let input = word::request_input(req);
                if h.main.0.core.state.get() != State::Suspended {
                    return refuse_or_switch(g, h.main.clone(), input);
                }
                (h.main.clone(), input)
            }
            _ => {
                g.0.core.state.set(State::Suspended);
                let target = word::take_target();
                let input = word::request_input(req);
                if target.0.core.state.get().in_hub() {
                    return refuse_or_switch(g, target, input);
                }
                (target, input)
            }
        },
        CoroutineResult::Return(_) => finish(h, g),
    }
}

/// Resumes the coroutine of `g` with `input`.
///
/// # Safety
///
/// `g` is not running and has a coroutine (it is not dead), and no other reference to
/// the coroutine exists (see [`crate::greenlet::record::Record::coroutine`]).
#[inline(always)]
unsafe fn resume_coroutine(g: &Greenlet, input: Word) -> CoroutineResult<Word, Word> {
    // SAFETY: guaranteed by the caller.
    match unsafe { g.0.coroutine() } {
        Some(co) => co.resume(input),
        None => unreachable!("green: resuming a greenlet without a coroutine"),
    }
}

/// Makes `g` the running greenlet: its state, the hub's current greenlet, the context,
/// the yielder (the stack-overflow handler finds the running greenlet through the
/// current one).
#[inline(always)]
fn enter(h: &Hub, g: &Greenlet) {
    g.0.core.state.set(State::Running);
    h.set_current(g);
    hub::set_context(CTX_GREENLET);
    YIELDER.with(|c| c.set(g.0.core.yielder.get()));
    // For `sync::monitor` (blocking detection): the switch count and the running
    // greenlet's id and name, only while a monitor is attached.
    if h.monitoring.get() {
        h.monitor.count_switch();
        h.monitor.record(g);
    }
}

/// Undoes [`enter`] when the greenlet suspends or returns: the hub runs.
#[inline(always)]
fn leave(h: &Hub) {
    if h.monitoring.get() {
        h.monitor.record_hub();
    }
    hub::set_context(CTX_HUB);
    h.set_current(&h.hub);
}

/// [`resume`] for a greenlet that is not simply suspended (nor a [`plain_start`]): dead
/// (forward to its nearest live ancestor), not started and thrown into (kill it
/// unstarted) or queued, or resumed directly while waiting in the ready queue.
#[cold]
#[inline(never)]
fn resume_unusual(h: &Hub, g: Greenlet, input: Word) -> (Greenlet, Word) {
    if g.0.core.state.get() == State::Dead {
        return (g.live_parent(), input);
    }
    let mut input = word::unpack_input(input);
    if g.0.has_pending() {
        // Resumed directly while queued: the queue entry becomes stale. A kill or a
        // timeout waiting there wins over the value of an explicit switch (not over a
        // child's panic that unwinds as far).
        if let Some(Input::Throw(p)) = g.0.take_pending() {
            input = crate::hub::throw::pending_or_input(p, input);
        }
    }
    if g.0.core.state.get() == State::Fresh
        && let Input::Throw(p) = input
    {
        return kill_unstarted(h, g, p);
    }
    run(h, g, word::pack_input(input))
}

/// A greenlet killed before it started: it never runs.
#[cold]
fn kill_unstarted(h: &Hub, g: Greenlet, p: Payload) -> (Greenlet, Word) {
    // Its exit callbacks run in the hub.
    h.set_current(&h.hub);
    hub::set_context(CTX_HUB);
    // SAFETY: as in `resume`: the driver owns the coroutine of a non-running greenlet.
    if let Some(mut co) = unsafe { g.0.coroutine() }.take() {
        co.force_unwind();
        h.stacks.borrow_mut().put(co.into_stack());
    }
    g.0.core.state.set(State::Dead);
    drop_stale_pending(&g);
    crate::hub::timer::cancel_start(&g);
    // A spawned greenlet's outcome is its handle's, as if it had started and been
    // unwound: killed for a `GreenletExit`, panicked with the payload otherwise.
    let out = if g.0.cold.outcome.is_kept() {
        g.0.cold.outcome.store(Err(p));
        g.0.cold.outcome.log_unjoinable_panic(&g);
        Input::Value(Value::none())
    } else if p.is::<GreenletExit>() {
        Input::Value(Value::new(GreenletExit))
    } else {
        Input::Throw(p)
    };
    run_exit_callbacks(h, &g);
    (g.live_parent(), word::pack_input(out))
}

/// Drops an input queued for `g` that can no longer be delivered (it died first): its
/// ready-queue entry becomes stale, instead of handing the input to `g`'s parent.
#[inline]
fn drop_stale_pending(g: &Greenlet) {
    if g.0.has_pending() || crate::hub::any_deferred() {
        drop_stale_pending_slow(g);
    }
}

/// [`drop_stale_pending`], and the dead greenlet's throw state goes too
/// (`hub::throw::forget`).
#[cold]
fn drop_stale_pending_slow(g: &Greenlet) {
    if g.0.has_pending() {
        drop(g.0.take_pending());
    }
    crate::hub::throw::forget(&g.0);
}

/// A greenlet's function returned (or panicked): free its stack, run its exit callbacks,
/// and go to its parent with the outcome.
#[cold]
#[inline(never)]
fn finish(h: &Hub, g: Greenlet) -> (Greenlet, Word) {
    g.0.core.state.set(State::Dead);
    // A kill or wake queued for it while it ran (say, by itself) is moot now.
    drop_stale_pending(&g);
    // SAFETY: as in `resume`; the coroutine has returned and is no longer running.
    if let Some(co) = unsafe { g.0.coroutine() }.take() {
        h.stacks.borrow_mut().put(co.into_stack());
    }
    // A spawned greenlet has stored its outcome for its `JoinHandle` (and its links,
    // which run next); its parent, the hub, gets nothing. A panic nobody can join is
    // logged here, where a logger cannot switch.
    let out = if g.0.cold.outcome.is_kept() {
        g.0.cold.outcome.log_unjoinable_panic(&g);
        None
    } else {
        Some(word::take_output())
    };
    let to_hub = out.is_none()
        && g.0
            .cold
            .parent
            .borrow()
            .as_ref()
            .is_some_and(|p| p.is_hub());
    if to_hub && let Some(next) = hand_off_to_joiner(h, &g) {
        drop(g);
        return next;
    }
    run_exit_callbacks(h, &g);
    if to_hub {
        // Nothing for the hub (a spawned greenlet, the common case): straight to the next
        // ready greenlet, as after a park, without a trip through the loop. (`leave` has
        // marked the hub as running.)
        drop(g);
        return pick_next(h);
    }
    let parent = g.live_parent();
    let input = match out {
        None => Input::Value(Value::none()),
        Some(Ok(v)) => Input::Value(v),
        // Killed: the parent gets the `GreenletExit` as a value (greenlet's semantics).
        Some(Err(p)) if p.is::<GreenletExit>() => Input::Value(Value::new(GreenletExit)),
        Some(Err(p)) if parent.is_hub() => {
            log_panic(Some(&g), p.as_ref());
            Input::Value(Value::none())
        }
        Some(Err(p)) => Input::Throw(p),
    };
    (parent, word::pack_input(input))
}

/// The joiner of `g` (which just died, leaving nothing for its parent, the hub) as the
/// next greenlet to run, when the hub would run it next anyway: nothing is ready, `g` has
/// no other exit callback that could make something ready, and no poll of timers and IO
/// is due. It is resumed at once, as the end of its park, instead of going through the
/// ready queue. `None` otherwise: the joiner, if any, is left in `g`'s slot for
/// [`run_exit_callbacks`], unless it was stale (its park over), in which case it is
/// dropped here, as waking it would do nothing.
#[inline(always)]
fn hand_off_to_joiner(h: &Hub, g: &Greenlet) -> Option<(Greenlet, Word)> {
    let ticks = h.ticks.get();
    if ticks == 0 || !h.ready.is_empty() || has_other_exit_callbacks(g) {
        return None;
    }
    let joiner = g.0.cold.joiner.borrow_mut().take()?;
    match joiner.wake_directly() {
        Ok(j) => {
            // The scheduling tick the ready queue's pick would have counted.
            h.ticks.set(ticks - 1);
            Some((j, word::IN_UNPARKED))
        }
        // A stale unparker (its park ended): nothing to wake.
        Err(_) => None,
    }
}

pub(crate) fn log_panic(g: Option<&Greenlet>, p: &(dyn std::any::Any + Send)) {
    let msg = payload_str(p).unwrap_or("<non-string panic payload>");
    match g {
        Some(g) => log::error!("green: greenlet {g:?} panicked: {msg}"),
        None => log::error!("green: a greenlet panicked: {msg}"),
    }
}

/// Runs the callbacks registered to run when `g` dies, each isolated from the others,
/// then drops its greenlet-local values (`sync::local`).
#[inline(always)]
fn run_exit_callbacks(h: &Hub, g: &Greenlet) {
    let joiner = g.0.cold.joiner.borrow_mut().take();
    if let Some(u) = joiner {
        u.unpark_into(h);
    }
    if has_other_exit_callbacks(g) {
        run_exit_callbacks_slow(g);
    }
}

/// Whether `g` has exit callbacks besides its joiner (links, extra joiners) or
/// greenlet-local values to drop.
#[inline(always)]
fn has_other_exit_callbacks(g: &Greenlet) -> bool {
    !g.0.cold.on_exit.borrow().is_empty() || !g.0.cold.locals.borrow().is_empty()
}

/// [`run_exit_callbacks`] for links, extra joiners and greenlet-local values.
#[cold]
#[inline(never)]
fn run_exit_callbacks_slow(g: &Greenlet) {
    if !g.0.cold.on_exit.borrow().is_empty() {
        let cbs = std::mem::take(&mut *g.0.cold.on_exit.borrow_mut());
        for cb in cbs {
            run_hub_callback(|| cb(g));
        }
    }
    if !g.0.cold.locals.borrow().is_empty() {
        let locals = std::mem::take(&mut *g.0.cold.locals.borrow_mut());
        run_hub_callback(move || drop(locals));
    }
}

/// Runs a callback in the hub; a panic in it is logged, never propagated (`None`).
pub(crate) fn run_hub_callback<R>(cb: impl FnOnce() -> R) -> Option<R> {
    match catch_unwind(AssertUnwindSafe(cb)) {
        Ok(r) => Some(r),
        Err(p) => {
            let msg = payload_str(p.as_ref()).unwrap_or("<non-string panic payload>");
            log::error!("green: a hub callback panicked: {msg}");
            None
        }
    }
}

/// How many scheduling ticks pass between polls of timers and IO while greenlets are
/// ready (tokio's current-thread runtime uses 61 too).
pub(crate) const MAINTENANCE_INTERVAL: u32 = 61;

/// The next greenlet to run, waiting for timers and IO when none is ready; `None` when
/// nothing can ever become ready.
#[inline(always)]
fn next_ready(h: &Hub) -> Option<(Greenlet, Word)> {
    // A countdown: cheaper than a modulo on every tick.
    let t = h.ticks.get();
    if t == 0 {
        h.ticks.set(MAINTENANCE_INTERVAL - 1);
        poll_events(h, false);
    } else {
        h.ticks.set(t - 1);
    }
    loop {
        let g = h.ready.pop();
        match g {
            Some(g) => {
                h.ready.warm_next();
                if let Some(w) = g.0.take_pending_word() {
                    return Some((g, w));
                }
                // Stale: it was resumed some other way meanwhile.
            }
            None => {
                if !poll_events(h, true) {
                    return None;
                }
            }
        }
    }
}

/// Fires due timers and polls the reactor. With `block`, waits (until the next timer
/// or IO readiness) when nothing is ready. Returns `false` if nothing could ever wake.
///
/// The clock is read only while timers are armed: a hub serving only IO (the echo
/// server) polls without it.
fn poll_events(h: &Hub, block: bool) -> bool {
    if h.throws.listed.get() {
        crate::hub::throw::release(h);
    }
    loop {
        // Nothing else runs between here and the deadline below but the due timers'
        // own actions, which can only arm timers when some were armed before.
        let now = if h.timers.borrow().is_empty() {
            None
        } else {
            let now = Instant::now();
            crate::hub::timer::fire_due(h, now);
            Some(now)
        };
        let has_io = h.io_waiters.get() > 0;
        let has_remote = h.blocking_pending.get() > 0;
        let ready = !h.ready.is_empty();
        if !block || ready {
            if has_io || has_remote {
                crate::hub::reactor::poll(h, Some(std::time::Duration::ZERO));
            }
            return true;
        }
        let next = match now {
            Some(_) => h.timers.borrow_mut().next_deadline(),
            None => None,
        };
        if next.is_none() && !has_io && !has_remote {
            return false;
        }
        let timeout = next
            .zip(now)
            .map(|(d, now)| d.saturating_duration_since(now));
        crate::hub::reactor::poll(h, timeout);
        if !h.ready.is_empty() {
            // Fire timers that came due while polling before running anything.
            if !h.timers.borrow().is_empty() {
                crate::hub::timer::fire_due(h, Instant::now());
            }
            return true;
        }
    }
}

/// Queues `g`, just created by `spawn`, to start with the empty value.
#[inline(always)]
pub(crate) fn schedule_new(h: &Hub, g: &Greenlet) {
    if !g.0.set_pending_word(word::IN_NONE) {
        h.push_ready(g.clone());
    }
}

/// How many times the greenlets still alive when their thread ends are killed (see
/// [`unwind_at_exit`]) before those left are given up.
const EXIT_ROUNDS: u32 = 16;

/// Unwinds the greenlets of this thread still alive when its hub is dropped, at thread
/// exit, so that their destructors run: each is killed at its switch point (a greenlet
/// not started dies without running), from the main greenlet, its death coming back
/// there. This runs while the thread's thread-locals are destroyed (the hub is one):
/// the destructors it runs cannot use those already gone.
///
/// Meanwhile the hub never waits for timers or IO: a timer due at once, armed again each
/// time it fires, gives main its turn back whenever the hub fires timers, which it does
/// when nothing is ready and at every maintenance tick (so a greenlet yielding in a loop
/// cannot keep it either). The hub's hot paths are not touched.
/// A greenlet that parks again while it unwinds (its destructor waits) is resumed in
/// the next round with the end of its park as `BlockError::WouldBlockForever` (nothing
/// could ever wake it); one that caught its kill and went on is killed again. After
/// [`EXIT_ROUNDS`] rounds, the greenlets still alive are left as they are (their stacks
/// are not unwound) and a line is logged.
pub(crate) fn unwind_at_exit(h: &Hub) {
    if hub::context() != CTX_MAIN || h.main.0.core.state.get() != State::Running {
        return;
    }
    let tick = Rc::new(Cell::new(None));
    for round in 0..EXIT_ROUNDS {
        let live = crate::greenlet::record::live_greenlets();
        if live.is_empty() {
            break;
        }
        if round == 0 {
            arm_exit_tick(tick.clone());
        }
        for g in live {
            if g.dead() {
                continue;
            }
            let input = if round > 0
                && g.0.core.state.get() == State::Parked
                && crate::hub::throw::unwinding_from_throw(&g)
            {
                Input::LoopExit
            } else {
                crate::hub::throw::kill_input(&g)
            };
            *g.0.cold.parent.borrow_mut() = Some(h.main.clone());
            if let Input::Throw(p) = drive(h, g.clone(), input) {
                // Its panic, or that of a greenlet whose parent is main.
                log_panic(g.dead().then_some(&g), p.as_ref());
            }
        }
    }
    if let Some(key) = tick.take() {
        crate::hub::timer::cancel(key);
    }
    let left = crate::greenlet::record::live_greenlets().len();
    if left > 0 {
        log::error!(
            "green: the thread ends with {left} greenlets that would not unwind in \
             {EXIT_ROUNDS} rounds of kills (they caught them, or their destructors kept \
             waiting); they are leaked"
        );
    }
}

/// Arms the timer of [`unwind_at_exit`]: due at once, it queues main (if it is in the
/// driver and not queued yet), to end the current step of the unwinding after the
/// greenlets ready before it, and arms itself again. `key` holds the armed one's key.
fn arm_exit_tick(key: Rc<Cell<Option<crate::hub::timer::Key>>>) {
    let again = key.clone();
    let tick = crate::hub::timer::add(
        Instant::now(),
        crate::hub::timer::Action::Call(Box::new(move || {
            with_hub(|h| {
                let main = &h.main;
                if main.0.core.state.get() != State::Running && !main.0.has_pending() {
                    main.0.set_pending(Input::LoopExit);
                    h.push_ready(main.clone());
                }
            });
            arm_exit_tick(again);
        })),
    );
    key.set(Some(tick));
}

/// Unwinds a suspended greenlet whose last handle was dropped.
pub(crate) fn kill_orphan(g: Greenlet) {
    let done = hub::try_with_hub(|h| {
        // (Main's state is `Suspended` exactly while the driver runs.)
        if hub::context() == CTX_MAIN && h.main.0.core.state.get() == State::Running {
            // The main greenlet dropped it: unwind it now and come back here.
            *g.0.cold.parent.borrow_mut() = Some(h.main.clone());
            let out = drive(h, g.clone(), crate::hub::throw::kill_input(&g));
            if g.dead() {
                if let Input::Throw(p) = out {
                    log_panic(Some(&g), p.as_ref());
                }
            } else {
                // Main came back for another reason while the orphan, still unwinding,
                // waits (its destructors switch): the orphan finishes under the hub, and
                // a kill or timeout meant for main waits for main in the ready queue,
                // raised when main next switches away and is resumed.
                *g.0.cold.parent.borrow_mut() = Some(h.hub.clone());
                if let Input::Throw(p) = out {
                    crate::hub::throw::deliver(h, &h.main, p);
                }
            }
        } else {
            // Dropped inside a greenlet or the hub: the hub unwinds it next.
            *g.0.cold.parent.borrow_mut() = Some(h.hub.clone());
            let input = crate::hub::throw::kill_input(&g);
            if !g.0.set_pending(input) {
                h.push_ready(g.clone());
            }
        }
    });
    if done.is_none() {
        // The thread is ending and its hub is gone: nothing can run the unwinding.
        // SAFETY: the greenlet is suspended and unreachable by the (gone) driver.
        if let Some(co) = unsafe { g.0.coroutine() }.take() {
            std::mem::forget(co);
        }
    }
}
