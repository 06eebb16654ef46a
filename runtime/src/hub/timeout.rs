//! The timeout payload, [`Timeout`], and the timer that raises it into its greenlet
//! ([`arm_timeout`]), put off while a deeper throw unwinds a destructor it was armed
//! in. Its delivery is the throw machinery's (`throw.rs`).

use std::cell::Cell;
use std::fmt;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::greenlet::{Greenlet, Payload};
use crate::hub::throw::{Carried, deliver_now, throw_into, unwinding_from_throw, with_throws};
use crate::hub::timer::{self, TimerHandle};
use crate::hub::with_hub;

static NEXT_TIMEOUT: AtomicU64 = AtomicU64::new(1);

/// A timeout that fired: the error of [`with_timeout`](crate::with_timeout) and
/// [`Timeout::catch`], and the panic payload that unwinds the interrupted greenlet.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// let r = green::with_timeout(Duration::from_millis(10), || {
///     green::sleep(Duration::from_secs(10));
/// });
/// let t = r.unwrap_err();
/// assert_eq!(t.duration(), Duration::from_millis(10));
/// println!("{t}"); // timed out after 10ms
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeout {
    pub(super) id: u64,
    duration: Duration,
}

impl Timeout {
    /// A new timeout payload, with a process-unique id.
    pub(crate) fn new(duration: Duration) -> Timeout {
        Timeout {
            id: NEXT_TIMEOUT.fetch_add(1, Ordering::Relaxed),
            duration,
        }
    }

    /// The id of the timeout that fired (compare with
    /// [`TimeoutGuard::id`](crate::TimeoutGuard::id)).
    ///
    /// ```
    /// use std::time::Duration;
    /// let guard = green::Timeout::start(Duration::from_millis(5));
    /// let t = green::Timeout::catch(|| green::sleep(Duration::from_secs(5))).unwrap_err();
    /// assert_eq!(t.id(), guard.id());
    /// ```
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The duration it was armed with.
    ///
    /// ```
    /// use std::time::Duration;
    /// let t = green::with_timeout(Duration::from_millis(1), || green::sleep(Duration::from_secs(1)));
    /// assert_eq!(t.unwrap_err().duration(), Duration::from_millis(1));
    /// ```
    pub fn duration(&self) -> Duration {
        self.duration
    }
}

impl fmt::Display for Timeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "timed out after {:?}", self.duration)
    }
}

impl std::error::Error for Timeout {}

/// Where a timeout was armed: inside a destructor run while its greenlet unwound from
/// `depth` kills and timeouts of the episode `episode` (`depth` 0: in ordinary code).
#[derive(Clone, Copy)]
struct Cleanup {
    depth: u8,
    episode: u64,
    /// Tries put off so far (see [`fire`]), for the wait before the next.
    retries: u32,
}

/// The wait between two tries of a timeout armed inside a destructor, put off while a
/// deeper throw seems to unwind its greenlet, doubles from 1 ms up to 2^this ms (1, 2,
/// 4, 8, 16, 16, ... ms).
const MAX_RETRY_SHIFT: u32 = 4;

/// An error a timeout raises instead of its [`Timeout`] (`TimeoutGuard::with_error`):
/// taken by the first firing.
pub(crate) type TimeoutError = Rc<Cell<Option<Payload>>>;

/// Arms `payload` for `g`, the current greenlet, to fire at `deadline` unless `armed`
/// is cleared first (it is cleared when it fires). It raises the error in `error`, if
/// there is one still, instead of `payload`. Armed by a destructor that runs while
/// a kill or timeout unwinds `g`, its scope is inside that destructor: it may fire there,
/// unless a deeper throw (raised inside that destructor) unwinds it then.
pub(crate) fn arm_timeout(
    g: Greenlet,
    payload: Timeout,
    armed: Rc<Cell<bool>>,
    error: Option<TimeoutError>,
    deadline: Instant,
) -> TimerHandle {
    let (depth, episode) = if unwinding_from_throw(&g) {
        with_throws(|t| {
            t.marks
                .borrow()
                .get(&g.id())
                .map_or((0, 0), |m| (m.raised, m.episode))
        })
        .unwrap_or((0, 0))
    } else {
        (0, 0)
    };
    let at = Cleanup {
        depth,
        episode,
        retries: 0,
    };
    timer::call_at(deadline, move || fire(g, armed, payload, error, at))
}

/// The timer of a timeout armed by [`arm_timeout`].
fn fire(
    target: Greenlet,
    armed: Rc<Cell<bool>>,
    payload: Timeout,
    error: Option<TimeoutError>,
    at: Cleanup,
) {
    if !armed.replace(false) {
        return;
    }
    let p = || -> Payload {
        match error.as_ref().and_then(|e| e.take()) {
            Some(e) => Box::new(Carried {
                timeout: Some(payload),
                payload: e,
            }),
            None => Box::new(payload),
        }
    };
    let now = with_throws(|t| {
        t.marks
            .borrow()
            .get(&target.id())
            .map_or((0, 0), |m| (m.raised, m.episode))
    })
    .unwrap_or((0, 0));
    let in_cleanup = at.depth > 0 && now.0 > 0 && now.1 == at.episode;
    if !in_cleanup {
        // Armed in ordinary code (or the unwinding it was armed in is over): held while
        // its greenlet unwinds.
        throw_into(&target, p());
    } else if now.0 > at.depth && std::thread::panicking() {
        // A throw raised inside the destructor this scope lives in seems to unwind it
        // now (its own destructors switched): raised there, this one would abort the
        // process. Tried again a little later, until that unwinding is over or the scope
        // ends. (A timeout caught there with a plain `catch_unwind` leaves a count that
        // looks the same: it puts this one off until the outer unwinding ends, a
        // documented limit.)
        armed.set(true);
        let wait = 1u64 << at.retries.min(MAX_RETRY_SHIFT);
        let retry = Instant::now() + Duration::from_millis(wait);
        let next = Cleanup {
            retries: at.retries.saturating_add(1),
            ..at
        };
        let _ = timer::call_at(retry, move || fire(target, armed, payload, error, next));
    } else {
        // Its scope is inside the destructor now running: raised there, as its owner
        // expects.
        with_hub(|h| deliver_now(h, &target, p()));
    }
}
