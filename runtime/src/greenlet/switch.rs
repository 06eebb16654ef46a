//! Switching, seen from a greenlet: what crosses a switch ([`Input`]), and how the
//! running greenlet leaves for another one, for the scheduler, or back to main.
//!
//! A greenlet on its own stack leaves by suspending its coroutine with a request word
//! (see `word`); the trampoline, on the thread's stack, does the rest (see
//! `trampoline`). The main greenlet is on the thread's stack itself: it runs the
//! trampoline in place, except for its commonest switch, into a suspended greenlet that
//! switches straight back ([`switch_from_main`]).

use corosensei::{CoroutineResult, Yielder};

use crate::greenlet::error::{BlockError, SwitchError};
use crate::greenlet::record::{Kind, State};
use crate::greenlet::thread::{self, Context, Thread};
use crate::greenlet::trampoline::{enter, main_resumes, main_runs, resume_coroutine};
use crate::greenlet::value::Value;
use crate::greenlet::word::{self, Word};
use crate::greenlet::{Greenlet, Payload};

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

/// How a wait (a park) ended.
///
/// ```
/// use std::time::{Duration, Instant};
/// let w = green::park::park(Some(Instant::now() + Duration::from_millis(1))).unwrap();
/// assert_eq!(w, green::park::Wake::TimedOut);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// An [`Unparker`](crate::park::Unparker) woke it (or, spuriously, a child of the
    /// parked greenlet returned into it; explicit switches into a parked greenlet are
    /// refused).
    Unparked,
    /// The deadline passed.
    TimedOut,
}

/// A refused switch, on its way back to the greenlet that asked for it.
pub(crate) struct Refused {
    pub(crate) error: SwitchError,
    pub(crate) value: Value,
}

/// What a greenlet's coroutine returns: a value for its parent, or a panic.
pub(crate) type Output = Result<Value, Payload>;

/// Called first thing by a starting greenlet: records its yielder (fixed for the
/// coroutine's life, it lives at the bottom of the coroutine's stack).
#[inline]
pub(crate) fn set_yielder(y: &Yielder<usize, usize>) {
    thread::set_yielder(y);
    thread::with_current(|g| g.core.yielder.set(y));
}

/// Suspends the running greenlet's coroutine with the request word `req`; returns the
/// input word it is resumed with.
///
/// Only in greenlet context (the caller checked): the main greenlet waits by running the
/// trampoline in place instead (`trampoline::main_waits`).
#[inline(always)]
pub(crate) fn suspend(req: Word) -> Word {
    let y = thread::yielder();
    debug_assert!(!y.is_null());
    // SAFETY: in greenlet context the trampoline set the yielder to the running
    // coroutine's, which lives on that coroutine's stack for as long as it runs; we are
    // on that stack now, so the pointer is valid and suspending is allowed.
    unsafe { (*y).suspend(req) }
}

/// Switches from the current greenlet to `target` with `input`.
///
/// Inlined into the caller, with no closure or call frame live across the coroutine
/// switch: a frame entered before a switch and left after it ends in a `ret` that the
/// CPU's return-stack predictor gets wrong (the other stack's calls filled it). So main
/// reaches its `Thread` through `thread::ptr()`, not a `thread::with` closure: with the
/// closure, a switch round trip takes about 22 instructions more than its 123
/// (`benches/instr.rs`).
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
    if thread::context() == Context::Scheduler {
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

/// Panics in the scheduler, where switching is not allowed.
#[inline(always)]
fn check_can_switch() {
    if thread::context() == Context::Scheduler {
        scheduler_switch_panic();
    }
}

#[cold]
#[inline(never)]
fn scheduler_switch_panic() -> ! {
    if thread::with(|t| t.trace.in_hook.get()) {
        panic!("green: a trace hook must not switch greenlets (see green::settrace)");
    }
    panic!("green: {}", SwitchError::InHub);
}

/// [`switch_to`] with the input as its word.
#[inline(always)]
fn switch_word(target: &Greenlet, input: Word) -> Word {
    if thread::is_current(target) {
        return input;
    }
    at_switch_point();
    if thread::context() == Context::Greenlet {
        let req = if target.0.core.kind == Kind::Main {
            word::REQ_MAIN | input
        } else {
            word::set_target(target.clone());
            word::REQ_SWITCH | input
        };
        suspend(req)
    } else {
        // SAFETY: the `Thread` lives until the thread's thread-locals are destroyed, and
        // this reference is used only during this call (a `thread::with` closure would
        // be a frame spanning the switch, see above).
        let t = unsafe { &*thread::ptr() };
        switch_from_main(t, target, input)
    }
}

/// A switch point: raises a throw deferred for the current greenlet, if the scheduler
/// holds one it may raise now. One thread-local load when no greenlet needs that.
#[inline(always)]
pub(crate) fn at_switch_point() {
    if thread::unusual() {
        at_switch_point_slow();
    }
}

#[cold]
#[inline(never)]
fn at_switch_point_slow() {
    thread::with(|t| t.scheduler().at_switch_point());
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
pub(crate) fn refuse_switch(target: &Greenlet, input: Word) -> Result<Word, Word> {
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

/// The main greenlet (outside the trampoline) switches to `target`.
///
/// Fast path for the commonest explicit switch: `target` is a suspended greenlet that
/// switches straight back to main. Then no loop is entered: main resumes the coroutine
/// and gets its answer, as a plain corosensei resume would. Anything else (a fresh, dead
/// or queued target, a target that switches elsewhere, parks or returns) continues in
/// the thread's scheduler's loop. Through the loop, a switch round trip takes about
/// twice its 123 instructions (`benches/instr.rs`).
#[inline(always)]
fn switch_from_main(t: &Thread, target: &Greenlet, input: Word) -> Word {
    let rec = &target.0;
    if rec.core.kind != Kind::Coro || rec.core.state.get() != State::Suspended || rec.has_pending()
    {
        return switch_from_main_slow(t, target, input);
    }
    debug_assert!(
        t.main.0.core.state.get() == State::Running,
        "main switches while the trampoline runs"
    );
    t.main.0.core.state.set(State::Suspended);
    enter(t, target, input);
    // SAFETY: as in `trampoline::run`: only the trampoline (here: main outside the loop,
    // which is where the loop would run) resumes coroutines; `target` is suspended, so it
    // is not running and has its coroutine; the caller's `&Greenlet` keeps it alive
    // meanwhile.
    let r = unsafe { resume_coroutine(target, input) };
    if let Some(w) = back_to_main(&r) {
        rec.core.state.set(State::Suspended);
        let input = main_resumes(t, word::request_input(w));
        main_runs(t);
        return input;
    }
    // Anything else: finish this step as the loop does, then go on in the loop.
    t.scheduler().drive_after(t, target.clone(), r)
}

/// [`switch_from_main`] for a target that is not simply suspended: refused if it waits
/// in the hub, else run by the loop.
#[cold]
#[inline(never)]
fn switch_from_main_slow(t: &Thread, target: &Greenlet, input: Word) -> Word {
    match refuse_switch(target, input) {
        Ok(refused) => refused,
        Err(input) => t.scheduler().drive(t, target.clone(), input),
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
        Input::Throw(p) => raise(p),
        Input::LoopExit => panic!("green: LoopExit: {}", BlockError::WouldBlockForever),
        Input::Refused(r) => refused_panic(*r),
    }
}

/// Raises `p`, a throw the current greenlet was resumed with (the scheduler notes a kill
/// or a timeout: see its `raise`).
#[cold]
pub(crate) fn raise(p: Payload) -> ! {
    thread::with(|t| t.scheduler().raise(p))
}

/// `Greenlet::switch`'s panic for a refused switch.
#[cold]
#[inline(never)]
fn refused_panic(r: Refused) -> ! {
    let Refused { error, value } = r;
    drop(value);
    panic!("green: {error}");
}
