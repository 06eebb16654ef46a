//! A greenlet's kept outcome: the result of a greenlet whose death keeps it in its
//! record (a spawned greenlet's) rather than passing it to its parent.

use std::cell::{Cell, RefCell};

use crate::greenlet::error::{GreenletExit, JoinError, payload_str};
use crate::greenlet::switch::Output;
use crate::greenlet::value::Value;
use crate::greenlet::{Greenlet, Payload};

/// A greenlet's outcome kept in its record instead of being passed to its parent (a
/// spawned greenlet's, read through its `JoinHandle`, so that a spawn allocates no
/// result slot of its own): what the function returned, or why it did not, and what
/// the handle did with it.
#[derive(Default)]
pub(crate) struct Outcome {
    pub(crate) result: RefCell<Option<Result<Value, JoinError>>>,
    flags: Cell<u8>,
}

/// The greenlet was spawned: its death keeps the outcome here (its parent, the hub,
/// gets nothing).
pub(crate) const KEPT: u8 = 1;
/// Its `JoinHandle` was dropped: nobody can join it any more.
pub(crate) const DETACHED: u8 = 2;
/// A join saw the outcome, so a panic is not logged.
pub(crate) const OBSERVED: u8 = 4;
/// The outcome was moved out.
pub(crate) const TAKEN: u8 = 8;
/// It panicked with nobody able to join it: its death logs the panic (in the hub).
const LOG_PANIC: u8 = 16;

impl Outcome {
    pub(crate) fn has(&self, flag: u8) -> bool {
        self.flags.get() & flag != 0
    }

    pub(crate) fn set(&self, flag: u8) {
        self.flags.set(self.flags.get() | flag);
    }

    /// Whether the greenlet's death keeps its outcome here (it was spawned).
    #[inline]
    pub(crate) fn is_kept(&self) -> bool {
        self.has(KEPT)
    }

    /// Logs the panic of a greenlet nobody can join, if [`store`](Self::store) found
    /// one: called by the trampoline when the greenlet dies, in the hub, where the logger
    /// cannot switch greenlets (the greenlet's own frame could, and a kill arriving
    /// there would escape it).
    #[inline]
    pub(crate) fn log_unjoinable_panic(&self, g: &Greenlet) {
        if self.has(LOG_PANIC) {
            self.log_panic_cold(g);
        }
    }

    #[cold]
    #[inline(never)]
    fn log_panic_cold(&self, g: &Greenlet) {
        self.flags.set(self.flags.get() & !LOG_PANIC);
        if let Some(Err(JoinError::Panicked(p))) = &*self.result.borrow() {
            let msg = payload_str(p.as_ref()).unwrap_or("<non-string payload>");
            log::error!("green: detached greenlet {g:?} panicked: {msg}");
        }
    }

    /// Empties it for a reused record; returns the result it held, to be dropped.
    #[inline]
    pub(crate) fn reset(&mut self) -> Option<Result<Value, JoinError>> {
        self.flags.set(0);
        let r = self.result.get_mut();
        if r.is_none() {
            return None;
        }
        r.take()
    }

    /// Keeps what the function of a spawned greenlet came to (called by its own frame
    /// when the function returns or panics, before its exit callbacks run). A panic
    /// nobody can ever join is marked to be logged by the trampoline (see
    /// [`log_unjoinable_panic`](Self::log_unjoinable_panic)).
    #[inline(always)]
    pub(crate) fn store(&self, out: Output) {
        match out {
            Ok(v) => self.put(Ok(v)),
            Err(p) => self.store_err(p),
        }
    }

    #[cold]
    #[inline(never)]
    fn store_err(&self, p: Payload) {
        let r = if p.is::<GreenletExit>() {
            Err(JoinError::Killed)
        } else {
            if self.has(DETACHED) {
                self.set(OBSERVED | LOG_PANIC);
            }
            Err(JoinError::Panicked(p))
        };
        self.put(r);
    }

    #[inline(always)]
    fn put(&self, r: Result<Value, JoinError>) {
        // Empty until now (a record's outcome is emptied before reuse): nothing to drop
        // in the common case, so no call to the drop glue.
        let old = self.result.borrow_mut().replace(r);
        if let Some(old) = old {
            drop(old);
        }
    }
}
