//! The hub's run loop: how it answers the greenlet layer's questions (see
//! [`Scheduler`]). What runs next is the front of the ready queue; when it is empty the
//! hub fires due timers and polls the reactor, waiting for the next timer or IO event;
//! every [`MAINTENANCE_INTERVAL`] picks it does so anyway, so that greenlets that keep
//! yielding cannot starve timers and IO.
//!
//! The loop itself is the greenlet layer's trampoline, instantiated for the hub
//! (`trampoline::drive_loop::<Hub>`): the calls below are static and inlined into it.

use std::time::Instant;

use corosensei::CoroutineResult;

use crate::greenlet::Greenlet;
use crate::greenlet::record::State;
use crate::greenlet::sched::Scheduler;
use crate::greenlet::switch::{Input, Wake};
use crate::greenlet::thread::Thread;
use crate::greenlet::trampoline::{self, has_exit_work};
use crate::greenlet::word::{self, Word};
use crate::greenlet::{Payload, thread};
use crate::hub::park::Unparker;
use crate::hub::{Hub, budget, throw, timer, with_hub};

/// How many scheduling ticks pass between polls of timers and IO while greenlets are
/// ready (tokio's current-thread runtime uses 61 too).
pub(crate) const MAINTENANCE_INTERVAL: u32 = 61;

impl Scheduler for Hub {
    #[inline(always)]
    fn next(&self) -> Option<(Greenlet, Word)> {
        // A countdown: cheaper than a modulo on every tick.
        let t = self.ticks.get();
        if t == 0 {
            self.ticks.set(MAINTENANCE_INTERVAL - 1);
            self.poll_events(false);
        } else {
            self.ticks.set(t - 1);
        }
        loop {
            match self.ready.pop() {
                Some(g) => {
                    if let Some(w) = g.0.take_pending_word() {
                        return Some((g, w));
                    }
                    // Stale: it was resumed some other way meanwhile.
                }
                None => {
                    if !self.poll_events(true) {
                        return None;
                    }
                }
            }
        }
    }

    /// Queues a greenlet that yielded, ending its park (see `park::end_park`): unparkers
    /// made before the yield are stale. One already queued (it unparked itself before
    /// yielding) keeps its place and its input.
    #[inline(always)]
    fn yielded(&self, g: Greenlet) {
        let rec = &g.0;
        rec.core
            .park_seq
            .set(rec.core.park_seq.get().wrapping_add(1));
        budget::restart(rec);
        if !rec.has_pending() {
            rec.set_pending(Input::Wake(Wake::Unparked));
            self.push_ready(g);
        }
    }

    /// A `spawn_later` greenlet started early (switched to): its start timer would keep
    /// the hub from reporting that nothing can wake until it fires.
    fn started_early(&self, g: &Greenlet) {
        self.disarm_start(g);
    }

    /// Forgets `g`'s throw state and start timer, then wakes its joiner: at once, as the
    /// next greenlet to run, when the hub would run it next anyway (`to_scheduler`,
    /// nothing is ready, `g` has no exit callback that could make something ready, and
    /// no poll of timers and IO is due), else through the ready queue. Through the ready
    /// queue every time, a spawn-and-join takes about 38 instructions more than its 916
    /// (`benches/instr.rs`).
    #[inline(always)]
    fn died(&self, g: &Greenlet, to_scheduler: bool) -> Option<(Greenlet, Word)> {
        throw::forget(&g.0);
        if g.0.core.start_armed.get() {
            self.disarm_start(g);
        }
        let joiner = g.0.cold.joiner.borrow_mut().take()?;
        let u = Unparker::from(joiner);
        let ticks = self.ticks.get();
        if to_scheduler && ticks != 0 && self.ready.is_empty() && !has_exit_work(g) {
            match u.wake_directly() {
                Ok(j) => {
                    // The scheduling tick the ready queue's pick would have counted.
                    self.ticks.set(ticks - 1);
                    return Some((j, word::IN_UNPARKED));
                }
                // A stale unparker (its park ended): nothing to wake.
                Err(_) => return None,
            }
        }
        u.unpark_into(self);
        None
    }

    fn pending_or_input(&self, pending: Payload, input: Input) -> Input {
        throw::pending_or_input(pending, input)
    }

    fn drive(&self, t: &Thread, target: Greenlet, input: Word) -> Word {
        trampoline::drive_loop(t, self, target, input)
    }

    fn drive_after(&self, t: &Thread, g: Greenlet, r: CoroutineResult<Word, Word>) -> Word {
        trampoline::drive_after(t, self, g, r)
    }

    fn at_switch_point(&self) {
        throw::at_switch_point();
    }

    fn raise(&self, p: Payload) -> ! {
        throw::raise(p)
    }

    fn take_interrupting(&self) -> Option<Payload> {
        throw::take_interrupting()
    }

    fn orphan(&self, t: &Thread, g: Greenlet) {
        throw::kill_orphan(self, t, g);
    }

    fn exit_input(&self, g: &Greenlet, round: u32) -> Input {
        // One that parked again while it unwinds (its destructor waits) gets the end of
        // its park as `LoopExit` (nothing could ever wake it); one that caught its kill
        // and went on is killed again.
        if round > 0 && g.0.core.state.get() == State::Parked && throw::unwinding_from_throw(g) {
            Input::LoopExit
        } else {
            throw::kill_input(g)
        }
    }

    /// Meanwhile the hub never waits for timers or IO: a timer due at once, armed again
    /// each time it fires, gives main its turn back whenever the hub fires timers, which
    /// it does when nothing is ready and at every maintenance tick (so a greenlet
    /// yielding in a loop cannot keep it either). The hub's hot paths are not touched.
    fn exit_tick(&self, on: bool) {
        if on {
            arm_exit_tick();
        } else if let Some(key) = self.exit_tick.take() {
            timer::cancel(key);
        }
    }
}

/// Arms the timer of [`Scheduler::exit_tick`]: due at once, it queues main (if it is in
/// the trampoline and not queued yet), to end the current step of the unwinding after
/// the greenlets ready before it, and arms itself again.
fn arm_exit_tick() {
    let tick = timer::add(
        Instant::now(),
        timer::Action::Call(Box::new(move || {
            let main = thread::with(|t| t.main.clone());
            if main.0.core.state.get() != State::Running && !main.0.has_pending() {
                main.0.set_pending(Input::LoopExit);
                with_hub(|h| h.push_ready(main));
            }
            arm_exit_tick();
        })),
    );
    with_hub(|h| h.exit_tick.set(Some(tick)));
}

impl Hub {
    /// Fires due timers and polls the reactor. With `block`, waits (until the next timer
    /// or IO readiness) when nothing is ready. Returns `false` if nothing could ever
    /// wake.
    ///
    /// The clock is read only while timers are armed: a hub serving only IO (the echo
    /// server) polls without it.
    fn poll_events(&self, block: bool) -> bool {
        if self.throws.listed.get() {
            throw::release(self);
        }
        loop {
            // Nothing else runs between here and the deadline below but the due timers'
            // own actions, which can only arm timers when some were armed before.
            let now = if self.timers.borrow().is_empty() {
                None
            } else {
                let now = Instant::now();
                timer::fire_due(self, now);
                Some(now)
            };
            let has_io = self.io_waiters.get() > 0;
            let has_remote = self.blocking_pending.get() > 0;
            let ready = !self.ready.is_empty();
            if !block || ready {
                if has_io || has_remote {
                    self.poll_io(Some(std::time::Duration::ZERO));
                }
                return true;
            }
            let next = match now {
                Some(_) => self.timers.borrow_mut().next_deadline(),
                None => None,
            };
            if next.is_none() && !has_io && !has_remote {
                return false;
            }
            let timeout = next
                .zip(now)
                .map(|(d, now)| d.saturating_duration_since(now));
            self.poll_io(timeout);
            if !self.ready.is_empty() {
                // Fire timers that came due while polling before running anything.
                if !self.timers.borrow().is_empty() {
                    timer::fire_due(self, Instant::now());
                }
                return true;
            }
        }
    }

    /// Queues `g`, just created by `spawn`, to start with the empty value and a whole
    /// fairness budget.
    #[inline(always)]
    pub(crate) fn start_new(&self, g: &Greenlet) {
        budget::restart(&g.0);
        if !g.0.set_pending_word(word::IN_NONE) {
            self.push_ready(g.clone());
        }
    }

    /// Arms the start of `g` (a `spawn_later` greenlet) at `deadline`.
    pub(crate) fn start_at(&self, g: &Greenlet, deadline: Instant) {
        budget::restart(&g.0);
        let key = timer::add(deadline, timer::Action::Start(g.clone()));
        self.starts.borrow_mut().insert(g.id(), key);
        g.0.core.start_armed.set(true);
    }

    /// Starts `g`, a `spawn_later` greenlet whose start timer fired: queued with the
    /// empty value, unless it died or something is pending for it already (a kill).
    pub(crate) fn start_due(&self, g: &Greenlet) {
        g.0.core.start_armed.set(false);
        self.starts.borrow_mut().remove(&g.id());
        if g.dead() || g.0.peek_rich_pending(|i| matches!(i, Input::Throw(_))) == Some(true) {
            return;
        }
        if !g
            .0
            .set_pending(Input::Value(crate::greenlet::value::Value::none()))
        {
            self.push_ready(g.clone());
        }
    }

    /// Disarms the timer that would start `g`: it started some other way, or died, and
    /// an armed timer keeps the hub from reporting that nothing can ever wake (and keeps
    /// `g`'s record alive).
    fn disarm_start(&self, g: &Greenlet) {
        g.0.core.start_armed.set(false);
        let key = self.starts.borrow_mut().remove(&g.id());
        if let Some(key) = key {
            timer::cancel(key);
        }
    }
}
