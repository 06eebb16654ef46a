//! Errors of the runtime: [`BlockError`] (gevent's `LoopExit`), [`JoinError`],
//! [`ParentError`], [`SwitchError`], and the [`GreenletExit`] payload that kills a
//! greenlet.

use std::any::Any;
use std::fmt;
use std::io;

/// The panic payload that [`Greenlet::throw`](crate::Greenlet::throw) and
/// [`JoinHandle::kill`](crate::JoinHandle::kill) raise at a greenlet's switch point.
///
/// It unwinds the greenlet (running destructors); the greenlet then counts as finished,
/// not as failed: as in greenlet, its parent receives a `GreenletExit` value.
///
/// # Examples
///
/// ```
/// use green::{Greenlet, GreenletExit, Value};
///
/// let g = Greenlet::new(|_: Value| {
///     green::getcurrent().parent().unwrap().switch(());
///     unreachable!("killed while suspended");
/// });
/// g.switch(());
/// let v = g.throw();
/// assert!(v.is::<GreenletExit>());
/// assert!(g.dead());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GreenletExit;

impl fmt::Display for GreenletExit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("GreenletExit")
    }
}

/// Why a blocking call could not wait.
///
/// # Examples
///
/// ```
/// // The main greenlet joins a greenlet that waits for something that never comes:
/// let stuck = green::spawn(|| { let _ = green::park::park(None); });
/// let err = stuck.join().unwrap_err();
/// assert!(err.is_would_block_forever());
/// println!("{err}"); // this operation would block forever: ... (gevent's LoopExit)
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockError {
    /// Nothing can ever wake the caller: no greenlet is ready, no timer is armed and no
    /// IO or helper-thread work is pending. gevent raises `LoopExit` here.
    WouldBlockForever,
    /// The caller is the hub itself (a timer callback or a link), which must not block.
    InHub,
}

impl fmt::Display for BlockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BlockError::WouldBlockForever => f.write_str(
                "this operation would block forever: no greenlet is ready, \
                 no timer is armed and no IO is pending (gevent's LoopExit)",
            ),
            BlockError::InHub => f.write_str(
                "cannot block in the hub: timer callbacks and links must not wait or switch",
            ),
        }
    }
}

impl std::error::Error for BlockError {}

impl From<BlockError> for io::Error {
    fn from(e: BlockError) -> io::Error {
        io::Error::other(e)
    }
}

/// Why [`JoinHandle::join`](crate::JoinHandle::join) returned no value.
///
/// # Examples
///
/// ```
/// let h = green::spawn(|| -> u8 { panic!("boom") });
/// let err = h.join().unwrap_err();
/// assert!(err.is_panic());
/// assert_eq!(err.panic_message(), Some("boom"));
/// ```
pub enum JoinError {
    /// The greenlet panicked; the payload is the panic's.
    Panicked(Box<dyn Any + Send + 'static>),
    /// The greenlet was killed (it received [`GreenletExit`]) before it returned.
    Killed,
    /// The wait timed out; the greenlet is still running and can be joined again.
    TimedOut,
    /// The wait could not happen (see [`BlockError`]).
    Blocked(BlockError),
    /// The value was already taken by an earlier `join_timeout` or `take_value`.
    Taken,
    /// A greenlet tried to join itself, which could never finish.
    JoinSelf,
}

impl JoinError {
    /// Whether the greenlet panicked.
    ///
    /// ```
    /// assert!(!green::JoinError::Killed.is_panic());
    /// ```
    pub fn is_panic(&self) -> bool {
        matches!(self, JoinError::Panicked(_))
    }

    /// Whether the greenlet was killed.
    ///
    /// ```
    /// assert!(green::JoinError::Killed.is_killed());
    /// ```
    pub fn is_killed(&self) -> bool {
        matches!(self, JoinError::Killed)
    }

    /// Whether the wait timed out.
    ///
    /// ```
    /// assert!(green::JoinError::TimedOut.is_timeout());
    /// ```
    pub fn is_timeout(&self) -> bool {
        matches!(self, JoinError::TimedOut)
    }

    /// Whether the wait would have blocked forever (gevent's `LoopExit`).
    ///
    /// ```
    /// use green::{BlockError, JoinError};
    /// assert!(JoinError::Blocked(BlockError::WouldBlockForever).is_would_block_forever());
    /// ```
    pub fn is_would_block_forever(&self) -> bool {
        matches!(self, JoinError::Blocked(BlockError::WouldBlockForever))
    }

    /// The panic's message when the payload is a string (what `panic!("..")` makes).
    ///
    /// ```
    /// let h = green::spawn(|| panic!("at {}", 3));
    /// assert_eq!(h.join().unwrap_err().panic_message(), Some("at 3"));
    /// ```
    pub fn panic_message(&self) -> Option<&str> {
        match self {
            JoinError::Panicked(p) => payload_str(p.as_ref()),
            _ => None,
        }
    }

    /// The panic payload, to re-raise it with [`std::panic::resume_unwind`].
    ///
    /// # Panics
    ///
    /// If the error is not [`JoinError::Panicked`]; use [`JoinError::try_into_panic`].
    ///
    /// ```
    /// let h = green::spawn(|| panic!("boom"));
    /// let p = h.join().unwrap_err().into_panic();
    /// assert_eq!(p.downcast_ref::<&str>(), Some(&"boom"));
    /// ```
    pub fn into_panic(self) -> Box<dyn Any + Send + 'static> {
        match self.try_into_panic() {
            Ok(p) => p,
            Err(e) => panic!("JoinError::into_panic on a non-panic error: {e}"),
        }
    }

    /// The panic payload, or the error back when it is not a panic.
    ///
    /// ```
    /// assert!(green::JoinError::Killed.try_into_panic().is_err());
    /// ```
    pub fn try_into_panic(self) -> Result<Box<dyn Any + Send + 'static>, JoinError> {
        match self {
            JoinError::Panicked(p) => Ok(p),
            other => Err(other),
        }
    }
}

/// The text of a panic payload made by `panic!` with a message, if any.
pub(crate) fn payload_str(p: &(dyn Any + Send)) -> Option<&str> {
    p.downcast_ref::<&'static str>()
        .copied()
        .or_else(|| p.downcast_ref::<String>().map(|s| s.as_str()))
}

impl fmt::Debug for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JoinError::Panicked(p) => match payload_str(p.as_ref()) {
                Some(m) => write!(f, "Panicked({m:?})"),
                None => f.write_str("Panicked(..)"),
            },
            JoinError::Killed => f.write_str("Killed"),
            JoinError::TimedOut => f.write_str("TimedOut"),
            JoinError::Blocked(b) => write!(f, "Blocked({b:?})"),
            JoinError::Taken => f.write_str("Taken"),
            JoinError::JoinSelf => f.write_str("JoinSelf"),
        }
    }
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JoinError::Panicked(p) => match payload_str(p.as_ref()) {
                Some(m) => write!(f, "the greenlet panicked: {m}"),
                None => f.write_str("the greenlet panicked"),
            },
            JoinError::Killed => f.write_str("the greenlet was killed"),
            JoinError::TimedOut => f.write_str("timed out waiting for the greenlet"),
            JoinError::Blocked(b) => b.fmt(f),
            JoinError::Taken => f.write_str("the greenlet's value was already taken"),
            JoinError::JoinSelf => f.write_str("a greenlet cannot join itself"),
        }
    }
}

impl std::error::Error for JoinError {}

impl From<BlockError> for JoinError {
    fn from(e: BlockError) -> Self {
        JoinError::Blocked(e)
    }
}

/// Why [`Greenlet::set_parent`](crate::Greenlet::set_parent) refused.
///
/// # Examples
///
/// ```
/// use green::{Greenlet, ParentError, Value};
/// let a = Greenlet::new(|_: Value| ());
/// let b = Greenlet::new(|_: Value| ());
/// b.set_parent(&a).unwrap();
/// assert_eq!(a.set_parent(&b), Err(ParentError::Cycle));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParentError {
    /// The new parent is the greenlet itself or one of its descendants.
    Cycle,
    /// The main greenlet and the hub have no parent to change.
    Root,
}

impl fmt::Display for ParentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParentError::Cycle => f.write_str("cyclic parent chain"),
            ParentError::Root => f.write_str("the main greenlet and the hub have no parent"),
        }
    }
}

impl std::error::Error for ParentError {}

/// Why [`Greenlet::try_switch`](crate::Greenlet::try_switch) refused to switch (what
/// [`Greenlet::switch`](crate::Greenlet::switch) panics with).
///
/// A greenlet parked in the hub (sleeping, waiting for IO, a lock, an event, a queue or
/// a join) or yielding belongs to the hub until its wait ends. A switch into it would
/// only wake its wait for nothing (the wait goes on at once) and leave the caller
/// suspended with nobody to switch back to it (gevent raises "Invalid switch" there):
/// it is refused, and the target's wait is left untouched.
///
/// # Examples
///
/// ```
/// let sleeper = green::Builder::new()
///     .name("sleeper")
///     .spawn(|| green::sleep(std::time::Duration::from_millis(5)))
///     .unwrap();
/// green::yield_now(); // it starts and parks in its sleep
/// let err = sleeper.greenlet().try_switch(()).unwrap_err();
/// assert!(matches!(err, green::SwitchError::Parked { .. }));
/// // cannot switch into greenlet #.. "sleeper": it is parked in the hub (...)
/// println!("{err}");
/// sleeper.join().unwrap();
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SwitchError {
    /// The caller is the hub itself (a timer callback or a link), which must not switch.
    InHub,
    /// The target is parked in the hub: it waits on an
    /// [`Unparker`](crate::park::Unparker) (a sleep, IO, a lock, an event, a queue, a
    /// join, [`park`](crate::park::park)); only the end of that wait, a kill or a
    /// timeout resumes it.
    Parked {
        /// The target's [`id`](crate::Greenlet::id).
        id: u64,
        /// The target's [`name`](crate::Greenlet::name), if it has one.
        name: Option<String>,
    },
    /// The target yielded ([`yield_now`](crate::yield_now)) and waits for its turn in the
    /// hub's ready queue.
    Yielded {
        /// The target's [`id`](crate::Greenlet::id).
        id: u64,
        /// The target's [`name`](crate::Greenlet::name), if it has one.
        name: Option<String>,
    },
}

impl fmt::Display for SwitchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (id, name, why) = match self {
            SwitchError::InHub => {
                return f.write_str(
                    "cannot switch greenlets from the hub: timer callbacks and links \
                     must not wait or switch",
                );
            }
            SwitchError::Parked { id, name } => (
                id,
                name,
                "it is parked in the hub (a sleep, IO, or a wait for a lock, an event, a \
                 queue or a join); only the end of its wait, a kill or a timeout resumes it",
            ),
            SwitchError::Yielded { id, name } => (
                id,
                name,
                "it yielded (yield_now) and waits in the hub's ready queue; only the hub \
                 resumes it",
            ),
        };
        write!(f, "cannot switch into greenlet #{id}")?;
        if let Some(n) = name {
            write!(f, " {n:?}")?;
        }
        write!(f, ": {why}")
    }
}

impl std::error::Error for SwitchError {}
