//! The scheduler interface: what the greenlet layer asks of the layer above it.
//!
//! The greenlet layer switches greenlets; it does not decide what runs when a greenlet
//! parks, yields or switches to the scheduler's greenlet, nor how a kill reaches a
//! greenlet that waits. The hub does, by implementing [`Scheduler`] and installing itself
//! into the thread's state ([`Thread::install`](super::thread::Thread::install)) the first
//! time something on the thread needs it. The greenlet layer never names the hub.
//!
//! The trampoline's loop is generic over the scheduler (`trampoline::drive_loop::<S>`):
//! the calls made for every park, yield and death (`next`, `yielded`, `died`) are
//! static, inlined into the hub's own instance of the loop. Only the entry into the loop
//! from an explicit switch, and the cold hooks, go through `dyn Scheduler`.
//!
//! A thread that only switches explicitly (`Greenlet::new` and `switch`, as Python's
//! greenlet without gevent) has no scheduler: [`NoScheduler`] stands in, with nothing to
//! run next and nothing waiting.

use corosensei::CoroutineResult;

use crate::greenlet::error::GreenletExit;
use crate::greenlet::record::State;
use crate::greenlet::switch::Input;
use crate::greenlet::thread::{self, Context, Thread};
use crate::greenlet::trampoline;
use crate::greenlet::value::Value;
use crate::greenlet::word::Word;
use crate::greenlet::{Greenlet, Payload};

/// The thread's scheduler, as the greenlet layer sees it.
pub(crate) trait Scheduler {
    // ---- Called by the trampoline's loop (static dispatch in the scheduler's instance).

    /// The greenlet to run next and its input, waiting for timers and IO while none is
    /// ready; `None` when nothing can ever become ready (main then gets `LoopExit`).
    /// The scheduler's greenlet is current meanwhile.
    fn next(&self) -> Option<(Greenlet, Word)>;

    /// `g` yielded: it waits behind the greenlets that are ready.
    fn yielded(&self, g: Greenlet);

    /// `g`, whose start the scheduler arranged for later (`Core::start_armed`), was
    /// started another way first.
    fn started_early(&self, g: &Greenlet);

    /// `g` died: its exit work (wake its joiner, forget what the scheduler kept for it).
    /// With `to_scheduler` (it left nothing for its parent, the scheduler's greenlet) the
    /// scheduler may hand over to the next greenlet at once: `Some` of it.
    fn died(&self, g: &Greenlet, to_scheduler: bool) -> Option<(Greenlet, Word)>;

    /// A greenlet for which the scheduler queued the throw `pending` is resumed directly
    /// with `input`: which of the two it gets.
    fn pending_or_input(&self, pending: Payload, input: Input) -> Input;

    // ---- Called from outside the loop (through `dyn Scheduler`).

    /// Runs the trampoline's loop from the main greenlet: resumes `target` with `input`
    /// until main is switched to; returns what main is switched to with.
    fn drive(&self, t: &Thread, target: Greenlet, input: Word) -> Word;

    /// Finishes a step the main greenlet began itself (it resumed `g`, which did
    /// something other than switch straight back), then goes on in the loop.
    fn drive_after(&self, t: &Thread, g: Greenlet, r: CoroutineResult<Word, Word>) -> Word;

    /// A switch point of the current greenlet while some greenlet needs the slow path
    /// ([`thread::unusual`]): raises a throw deferred for it, if it may.
    fn at_switch_point(&self);

    /// Raises `p`, a throw delivered to the current greenlet, noting a kill or timeout.
    fn raise(&self, p: Payload) -> !;

    /// The current greenlet's function returned (or panicked) while some greenlet needs
    /// the slow path: a throw deferred for it that decides its outcome instead.
    fn take_interrupting(&self) -> Option<Payload>;

    /// `g` is suspended and its last handle went: unwind it (now, or soon).
    fn orphan(&self, t: &Thread, g: Greenlet);

    /// What `g`, alive when its thread ends, is resumed with in the `round`th round of
    /// kills (see `thread::unwind_at_exit`).
    fn exit_input(&self, g: &Greenlet, round: u32) -> Input;

    /// The thread ends: give main its turn back while the greenlets still alive unwind
    /// (`true`), or stop doing so (`false`).
    fn exit_tick(&self, on: bool);
}

/// The stand-in scheduler of a thread that only switches explicitly: nothing is ever
/// ready, queued or held, and a kill is a plain throw.
///
/// A loop the main greenlet entered with it (an explicit switch) may see the thread's
/// scheduler installed meanwhile (a greenlet it runs spawns, sleeps, ...): the calls the
/// loop makes then go to that scheduler.
pub(crate) struct NoScheduler;

/// The thread's installed scheduler, if one was installed since the loop began.
fn installed<R>(f: impl FnOnce(&dyn Scheduler) -> R) -> Option<R> {
    thread::try_with(|t| t.installed().map(f)).flatten()
}

impl Scheduler for NoScheduler {
    fn next(&self) -> Option<(Greenlet, Word)> {
        installed(|s| s.next()).flatten()
    }

    fn yielded(&self, g: Greenlet) {
        // Only the hub yields greenlets, and it is installed first.
        installed(|s| s.yielded(g));
    }

    fn started_early(&self, g: &Greenlet) {
        installed(|s| s.started_early(g));
    }

    fn died(&self, g: &Greenlet, to_scheduler: bool) -> Option<(Greenlet, Word)> {
        installed(|s| s.died(g, to_scheduler)).flatten()
    }

    fn pending_or_input(&self, pending: Payload, input: Input) -> Input {
        let mut args = Some((pending, input));
        let forwarded = installed(|s| args.take().map(|(p, i)| s.pending_or_input(p, i)));
        match (forwarded.flatten(), args) {
            (Some(chosen), _) => chosen,
            (None, Some((pending, _))) => Input::Throw(pending),
            // (Taken only by the forwarded call, which returned it.)
            (None, None) => Input::Value(Value::none()),
        }
    }

    fn drive(&self, t: &Thread, target: Greenlet, input: Word) -> Word {
        trampoline::drive_loop(t, self, target, input)
    }

    fn drive_after(&self, t: &Thread, g: Greenlet, r: CoroutineResult<Word, Word>) -> Word {
        trampoline::drive_after(t, self, g, r)
    }

    fn at_switch_point(&self) {}

    fn raise(&self, p: Payload) -> ! {
        std::panic::resume_unwind(p)
    }

    fn take_interrupting(&self) -> Option<Payload> {
        None
    }

    /// In the main greenlet, unwound at once (its death comes back to main); anywhere
    /// else (a greenlet, the trampoline) it waits for the thread's scheduler, if one is
    /// installed later, or for the thread's end.
    fn orphan(&self, t: &Thread, g: Greenlet) {
        if thread::context() == Context::Main && t.main.0.core.state.get() == State::Running {
            *g.0.cold.parent.borrow_mut() = Some(t.main.clone());
            let out = trampoline::drive(t, self, g.clone(), Input::Throw(Box::new(GreenletExit)));
            if let Input::Throw(p) = out {
                trampoline::log_panic(g.dead().then_some(&g), p.as_ref());
            }
        } else {
            t.orphans.borrow_mut().push(g);
        }
    }

    fn exit_input(&self, _: &Greenlet, _: u32) -> Input {
        Input::Throw(Box::new(GreenletExit))
    }

    fn exit_tick(&self, _: bool) {}
}
