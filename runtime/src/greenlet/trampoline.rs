//! The trampoline: the loop that resumes greenlets, running on the thread's own stack.
//!
//! corosensei coroutines are asymmetric: a coroutine can only suspend back to the code
//! that resumed it. Greenlets are symmetric. The trampoline bridges the two: every
//! greenlet is resumed by it, and a greenlet that switches *suspends* with a request
//! (see `word`) naming where to go next; the trampoline resumes that target. It runs in
//! the frame of the main greenlet's switch, park or yield, and returns when the main
//! greenlet is switched to.
//!
//! When a greenlet parks or yields, or something switches to the scheduler's greenlet,
//! the trampoline asks the thread's [`Scheduler`] what runs next. The loop is generic
//! over the scheduler: [`drive_loop`]`::<S>` is instantiated by each scheduler, so these
//! calls are static.

use std::panic::{AssertUnwindSafe, catch_unwind};

use corosensei::CoroutineResult;

use crate::greenlet::error::{GreenletExit, payload_str};
use crate::greenlet::record::{Kind, State};
use crate::greenlet::sched::Scheduler;
use crate::greenlet::switch::{Input, Output, refuse_switch};
use crate::greenlet::thread::{self, Context, Thread};
use crate::greenlet::trace;
use crate::greenlet::value::Value;
use crate::greenlet::word::{self, Word};
use crate::greenlet::{Greenlet, Payload};

/// Runs greenlets, starting by resuming `target` with `input`, until the main greenlet is
/// switched to; returns what it was switched to with. Runs on the thread's own stack.
pub(crate) fn drive<S: Scheduler + ?Sized>(
    t: &Thread,
    s: &S,
    target: Greenlet,
    input: Input,
) -> Input {
    word::unpack_input(s.drive(t, target, word::pack_input(input)))
}

/// The loop of [`drive`], with words in and out (see `word`): the one in flight keeps
/// anything rich in the thread's side slot.
pub(crate) fn drive_loop<S: Scheduler>(t: &Thread, s: &S, target: Greenlet, input: Word) -> Word {
    debug_assert!(
        t.main.0.core.state.get() == State::Running,
        "nested trampoline"
    );
    t.main.0.core.state.set(State::Suspended);
    let _guard = MainRunsAfter(t);
    if t.watched.get() {
        t.switch_log.record_scheduler();
    }
    run_loop(t, s, target, input)
}

/// Finishes a step the main greenlet began itself (`switch::switch_from_main`: it resumed
/// `g`, which did not switch straight back), then goes on in the loop.
pub(crate) fn drive_after<S: Scheduler>(
    t: &Thread,
    s: &S,
    g: Greenlet,
    r: CoroutineResult<Word, Word>,
) -> Word {
    let _guard = MainRunsAfter(t);
    leave(t);
    let (next, i) = after_resume(t, s, g, r);
    if t.watched.get() {
        t.switch_log.record_scheduler();
    }
    run_loop(t, s, next, i)
}

/// The main greenlet parks or yields (`req` is `word::REQ_PARK` or `word::REQ_YIELD`):
/// runs the loop, starting with the scheduler's pick, until main is switched to; returns
/// what main is resumed with. (A greenlet waits with `switch::suspend` instead.)
#[inline(always)]
pub(crate) fn main_waits<S: Scheduler>(t: &Thread, s: &S, req: Word) -> Word {
    if req == word::REQ_YIELD {
        s.yielded(t.main.clone());
    }
    debug_assert!(
        t.main.0.core.state.get() == State::Running,
        "nested trampoline"
    );
    t.main.0.core.state.set(if req == word::REQ_YIELD {
        State::Yielded
    } else {
        State::Parked
    });
    let _guard = MainRunsAfter(t);
    if t.watched.get() {
        t.switch_log.record_scheduler();
    }
    let (target, input) = to_scheduler(t, s);
    run_loop(t, s, target, input)
}

/// Resets the thread to "main is running" even if the trampoline unwinds.
struct MainRunsAfter<'a>(&'a Thread);

impl Drop for MainRunsAfter<'_> {
    #[inline]
    fn drop(&mut self) {
        main_runs(self.0);
    }
}

/// Marks the main greenlet as the running one (leaving the trampoline).
#[inline(always)]
pub(crate) fn main_runs(t: &Thread) {
    t.main.0.core.state.set(State::Running);
    thread::set_current(&t.main);
    thread::set_context(Context::Main);
}

/// The main greenlet is switched to with `input`; returns what it resumes with. A
/// queue entry it left is stale now, except that a kill or timeout waiting there wins
/// over the value of an explicit switch (as for any greenlet, see `resume_unusual`).
/// An attached monitor counts the switch.
#[inline(always)]
pub(crate) fn main_resumes(t: &Thread, input: Word) -> Word {
    let input = if t.main.0.has_pending() {
        main_pending(t, input)
    } else {
        input
    };
    // For `api::monitor` and the trace hook: main resumes (see `enter`). A tail call,
    // so that no value is live across it.
    if t.watched.get() {
        return trace::main_switched(t, input);
    }
    input
}

#[cold]
fn main_pending(t: &Thread, input: Word) -> Word {
    match t.main.0.take_pending() {
        Some(Input::Throw(p)) => {
            word::pack_input(t.scheduler().pending_or_input(p, word::unpack_input(input)))
        }
        _ => input,
    }
}

/// The loop of [`drive_loop`], once its guard is set.
#[inline(always)]
fn run_loop<S: Scheduler>(t: &Thread, s: &S, mut target: Greenlet, mut input: Word) -> Word {
    loop {
        match target.0.core.kind {
            Kind::Coro => (target, input) = resume(t, s, target, input),
            Kind::Main => return main_resumes(t, input),
            Kind::Hub => {
                if word::is_rich(input) {
                    scheduler_input(word::unpack_input(input));
                }
                (target, input) = to_scheduler(t, s);
            }
        }
    }
}

/// Something rich switched to the scheduler's greenlet: a panic of a greenlet whose
/// parent it is, which nobody catches, is logged; anything else is dropped.
#[cold]
fn scheduler_input(input: Input) {
    if let Input::Throw(p) = input {
        log_panic(None, p.as_ref());
    }
}

/// The loop's step when the scheduler's greenlet is switched to: the scheduler's next
/// greenlet, or the main greenlet with `LoopExit` when nothing can ever become ready.
#[inline(always)]
fn to_scheduler<S: Scheduler>(t: &Thread, s: &S) -> (Greenlet, Word) {
    thread::set_current(&t.hub);
    thread::set_context(Context::Scheduler);
    pick_next(t, s)
}

/// [`to_scheduler`] once the scheduler's greenlet is current (right after [`leave`]).
#[inline(always)]
fn pick_next<S: Scheduler>(t: &Thread, s: &S) -> (Greenlet, Word) {
    match s.next() {
        Some(next) => next,
        None => (t.main.clone(), word::pack_input(Input::LoopExit)),
    }
}

/// Resumes one greenlet; returns where to go next and with what.
#[inline(always)]
fn resume<S: Scheduler>(t: &Thread, s: &S, g: Greenlet, input: Word) -> (Greenlet, Word) {
    if !g.0.core.state.get().resumable() || g.0.has_pending() {
        if !plain_start(&g, input) {
            return resume_unusual(t, s, g, input);
        }
        if g.0.core.start_armed.get() {
            started_early(s, &g);
        }
    }
    run(t, s, g, input)
}

/// A greenlet whose start the scheduler arranged for later was started some other way.
#[cold]
#[inline(never)]
fn started_early<S: Scheduler>(s: &S, g: &Greenlet) {
    s.started_early(g);
}

/// Whether resuming `g` with `input` starts it as a suspended greenlet is resumed: it has
/// not started, is not queued, and is not started with a throw (that kills it unstarted).
#[inline(always)]
fn plain_start(g: &Greenlet, input: Word) -> bool {
    g.0.core.state.get() == State::Fresh && !g.0.has_pending() && !word::is_rich(input)
}

/// Runs `g`, a started greenlet that is not running, until it suspends or returns.
#[inline(always)]
fn run<S: Scheduler>(t: &Thread, s: &S, g: Greenlet, input: Word) -> (Greenlet, Word) {
    enter(t, &g, input);
    // SAFETY: the trampoline is the only code touching a greenlet's coroutine while the
    // greenlet lives, and `g` is not running (only one greenlet runs at a time and the
    // trampoline runs none now); `g` stays alive (we own a handle) while `co` is used. A
    // greenlet that is not dead has its coroutine.
    let r = unsafe { resume_coroutine(&g, input) };
    leave(t);
    after_resume(t, s, g, r)
}

/// Where to go after `g` suspended with a request or returned.
#[inline(always)]
fn after_resume<S: Scheduler>(
    t: &Thread,
    s: &S,
    g: Greenlet,
    r: CoroutineResult<Word, Word>,
) -> (Greenlet, Word) {
    match r {
        CoroutineResult::Yield(req) => match word::request_kind(req) {
            // Straight to the scheduler's next greenlet, without a trip through the
            // loop. (`leave` has made the scheduler's greenlet current.)
            word::REQ_PARK => {
                g.0.core.state.set(State::Parked);
                pick_next(t, s)
            }
            word::REQ_YIELD => {
                g.0.core.state.set(State::Yielded);
                s.yielded(g);
                pick_next(t, s)
            }
            // An explicit switch: refused if the target waits in the hub. (Main is
            // `Suspended` here unless it parked or yielded.)
            word::REQ_MAIN => {
                g.0.core.state.set(State::Suspended);
                let input = word::request_input(req);
                if t.main.0.core.state.get() != State::Suspended {
                    return refuse_or_switch(g, t.main.clone(), input);
                }
                (t.main.clone(), input)
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
        CoroutineResult::Return(_) => finish(t, s, g),
    }
}

/// The loop's step after `g` asked to switch to `target` (which waits in the hub): back
/// to `g` with the refusal, or on to `target` if it is not refused.
#[cold]
#[inline(never)]
fn refuse_or_switch(g: Greenlet, target: Greenlet, input: Word) -> (Greenlet, Word) {
    match refuse_switch(&target, input) {
        Ok(refused) => (g, refused),
        Err(input) => (target, input),
    }
}

/// Resumes the coroutine of `g` with `input`.
///
/// # Safety
///
/// `g` is not running and has a coroutine (it is not dead), and no other reference to
/// the coroutine exists (see [`crate::greenlet::record::Record::coroutine`]).
#[inline(always)]
pub(crate) unsafe fn resume_coroutine(g: &Greenlet, input: Word) -> CoroutineResult<Word, Word> {
    // SAFETY: guaranteed by the caller.
    match unsafe { g.0.coroutine() } {
        Some(co) => co.resume(input),
        None => unreachable!("green: resuming a greenlet without a coroutine"),
    }
}

/// Makes `g` the running greenlet: its state, the current greenlet (through which the
/// stack-overflow handler finds it), the context, the yielder.
#[inline(always)]
pub(crate) fn enter(t: &Thread, g: &Greenlet, input: Word) {
    g.0.core.state.set(State::Running);
    thread::set_current(g);
    thread::set_context(Context::Greenlet);
    thread::set_yielder(g.0.core.yielder.get());
    // For `api::monitor` (blocking detection: the switch count and the running
    // greenlet's id and name) and the trace hook, only while one is attached.
    if t.watched.get() {
        trace::switched(t, g, input);
    }
}

/// Undoes [`enter`] when the greenlet suspends or returns: the scheduler runs.
#[inline(always)]
pub(crate) fn leave(t: &Thread) {
    if t.watched.get() {
        t.switch_log.record_scheduler();
    }
    thread::set_context(Context::Scheduler);
    thread::set_current(&t.hub);
}

/// [`resume`] for a greenlet that is not simply suspended (nor a [`plain_start`]): dead
/// (forward to its nearest live ancestor), not started and thrown into (kill it
/// unstarted) or queued, or resumed directly while waiting in the ready queue.
#[cold]
#[inline(never)]
fn resume_unusual<S: Scheduler>(t: &Thread, s: &S, g: Greenlet, input: Word) -> (Greenlet, Word) {
    if g.0.core.state.get() == State::Dead {
        return (g.live_parent(), input);
    }
    let mut input = word::unpack_input(input);
    if g.0.has_pending() {
        // Resumed directly while queued: the queue entry becomes stale. A kill or a
        // timeout waiting there wins over the value of an explicit switch (not over a
        // child's panic that unwinds as far).
        if let Some(Input::Throw(p)) = g.0.take_pending() {
            input = s.pending_or_input(p, input);
        }
    }
    if g.0.core.state.get() == State::Fresh
        && let Input::Throw(p) = input
    {
        return kill_unstarted(t, s, g, p);
    }
    run(t, s, g, word::pack_input(input))
}

/// A greenlet killed before it started: it never runs.
#[cold]
fn kill_unstarted<S: Scheduler>(t: &Thread, s: &S, g: Greenlet, p: Payload) -> (Greenlet, Word) {
    // Its exit callbacks run in the scheduler.
    thread::set_current(&t.hub);
    thread::set_context(Context::Scheduler);
    // SAFETY: as in `resume`: the trampoline owns the coroutine of a non-running greenlet.
    if let Some(mut co) = unsafe { g.0.coroutine() }.take() {
        co.force_unwind();
        t.stacks.borrow_mut().put(co.into_stack());
    }
    g.0.core.state.set(State::Dead);
    drop_stale_pending(&g);
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
    let _ = s.died(&g, false);
    run_exit_callbacks(&g);
    (g.live_parent(), word::pack_input(out))
}

/// Drops an input queued for `g` that can no longer be delivered (it died first): its
/// ready-queue entry becomes stale, instead of handing the input to `g`'s parent.
#[inline]
fn drop_stale_pending(g: &Greenlet) {
    if g.0.has_pending() {
        drop_stale_pending_slow(g);
    }
}

#[cold]
fn drop_stale_pending_slow(g: &Greenlet) {
    drop(g.0.take_pending());
}

/// A greenlet's function returned (or panicked): free its stack, run its exit work, and
/// go to its parent with the outcome.
#[cold]
#[inline(never)]
fn finish<S: Scheduler>(t: &Thread, s: &S, g: Greenlet) -> (Greenlet, Word) {
    g.0.core.state.set(State::Dead);
    // A kill or wake queued for it while it ran (say, by itself) is moot now.
    drop_stale_pending(&g);
    // SAFETY: as in `resume`; the coroutine has returned and is no longer running.
    if let Some(co) = unsafe { g.0.coroutine() }.take() {
        t.stacks.borrow_mut().put(co.into_stack());
    }
    if g.0.cold.outcome.is_kept() {
        finish_kept(t, s, g)
    } else {
        finish_for_parent(s, g, word::take_output())
    }
}

/// [`finish`] for a greenlet that kept its outcome in its record (a spawned one's, for
/// its `JoinHandle` and its links, which run next): its parent gets nothing. A panic
/// nobody can join is logged here, where a logger cannot switch.
#[inline(always)]
fn finish_kept<S: Scheduler>(t: &Thread, s: &S, g: Greenlet) -> (Greenlet, Word) {
    g.0.cold.outcome.log_unjoinable_panic(&g);
    let to_scheduler =
        g.0.cold
            .parent
            .borrow()
            .as_ref()
            .is_some_and(|p| p.is_hub());
    if let Some(next) = s.died(&g, to_scheduler) {
        drop(g);
        return next;
    }
    run_exit_callbacks(&g);
    if to_scheduler {
        // Nothing for the scheduler (a spawned greenlet, the common case): straight to
        // its next greenlet, as after a park, without a trip through the loop. (`leave`
        // has made the scheduler's greenlet current.)
        drop(g);
        return pick_next(t, s);
    }
    (g.live_parent(), word::IN_NONE)
}

/// [`finish`] for a greenlet whose outcome `out` goes to its parent.
fn finish_for_parent<S: Scheduler>(s: &S, g: Greenlet, out: Output) -> (Greenlet, Word) {
    let _ = s.died(&g, false);
    run_exit_callbacks(&g);
    let parent = g.live_parent();
    let input = match out {
        Ok(v) => Input::Value(v),
        // Killed: the parent gets the `GreenletExit` as a value (greenlet's semantics).
        Err(p) if p.is::<GreenletExit>() => Input::Value(Value::new(GreenletExit)),
        Err(p) if parent.is_hub() => {
            log_panic(Some(&g), p.as_ref());
            Input::Value(Value::none())
        }
        Err(p) => Input::Throw(p),
    };
    (parent, word::pack_input(input))
}

/// Logs the panic `p` of `g` (or of a greenlet whose parent is the scheduler's), which
/// nobody can catch any more.
pub(crate) fn log_panic(g: Option<&Greenlet>, p: &(dyn std::any::Any + Send)) {
    let msg = payload_str(p).unwrap_or("<non-string panic payload>");
    match g {
        Some(g) => log::error!("green: greenlet {g:?} panicked: {msg}"),
        None => log::error!("green: a greenlet panicked: {msg}"),
    }
}

/// Runs the callbacks registered to run when `g` dies, each isolated from the others,
/// then drops its greenlet-local values. (Its joiner is the scheduler's: `Scheduler::died`.)
#[inline(always)]
fn run_exit_callbacks(g: &Greenlet) {
    if has_exit_work(g) {
        run_exit_callbacks_slow(g);
    }
}

/// Whether `g` has exit callbacks (links, extra joiners) or greenlet-local values to
/// drop when it dies.
#[inline(always)]
pub(crate) fn has_exit_work(g: &Greenlet) -> bool {
    !g.0.cold.on_exit.borrow().is_empty() || !g.0.cold.locals.borrow().is_empty()
}

/// [`run_exit_callbacks`] for links, extra joiners and greenlet-local values.
#[cold]
#[inline(never)]
fn run_exit_callbacks_slow(g: &Greenlet) {
    // One at a time: a callback may withdraw those after it (a link unlinking another).
    loop {
        let next = g.0.cold.on_exit.borrow_mut().pop_front();
        let Some((_, cb)) = next else { break };
        run_callback(|| cb(g));
    }
    if !g.0.cold.locals.borrow().is_empty() {
        let locals = std::mem::take(&mut *g.0.cold.locals.borrow_mut());
        run_callback(move || drop(locals));
    }
}

/// Runs a callback in the scheduler (an exit callback, a timer's, a destructor run
/// there); a panic in it is logged, never propagated (`None`).
pub(crate) fn run_callback<R>(cb: impl FnOnce() -> R) -> Option<R> {
    match catch_unwind(AssertUnwindSafe(cb)) {
        Ok(r) => Some(r),
        Err(p) => {
            let msg = payload_str(p.as_ref()).unwrap_or("<non-string panic payload>");
            log::error!("green: a hub callback panicked: {msg}");
            None
        }
    }
}

/// Unwinds `g`, a suspended greenlet whose last handle went: through the thread's
/// scheduler (or its stand-in), or, once the thread's scheduler is gone at thread exit,
/// not at all (its coroutine is leaked: nothing can run the unwinding).
pub(crate) fn kill_orphan(g: Greenlet) {
    let done = thread::try_with(|t| {
        if t.ending.get() {
            return false;
        }
        t.scheduler().orphan(t, g.clone());
        true
    });
    if done != Some(true) {
        // SAFETY: the greenlet is suspended and unreachable by the (gone) trampoline.
        if let Some(co) = unsafe { g.0.coroutine() }.take() {
            std::mem::forget(co);
        }
    }
}
