//! Waking a parked greenlet from other threads.
//!
//! A greenlet that waits for another thread (a helper thread's result, a futex wake
//! from a plain thread, a future's waker) registers a [`RemoteWait`] with its hub and
//! hands out [`RemoteWaker`]s, which are `Send` and may be used from any thread, any
//! number of times. A wake from another thread goes through the hub's cross-thread
//! waker (a `mio::Waker`, an eventfd write) and a list of woken keys under a mutex; a
//! wake from the hub's own thread takes effect at once.
//!
//! No wake-up is lost, by the argument of the kernel's futex: the waiting greenlet
//! checks its condition and then parks, and a wake that arrives in between (or before
//! the check) is remembered in the wait's slot, so that the park returns at once:
//!
//! ```text
//!   waiter (hub thread)                     waker (any thread)
//!   check condition: not yet
//!                                           make the condition true
//!                                           wake(): slot.woken = true (via the hub)
//!   park(): slot.woken? yes -> return
//! ```
//!
//! A waker whose wait was dropped (the waiting greenlet timed out, was killed or went
//! on) is stale: each wait's slot has a generation number, and a wake for an older one
//! does nothing.

use std::io;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Instant;

use crate::greenlet::error::BlockError;
use crate::greenlet::record::ParkLabel;
use crate::hub::park::{Wake, park_as, unparker};
use crate::hub::poller::{Remote, Slot, wake_slot};
use crate::hub::{hub_id, try_with_hub, with_hub};

/// A wait of the current greenlet for other threads: it keeps the hub polling (rather
/// than reporting that nothing can ever wake) while it exists, and [`park`](Self::park)
/// ends when one of its [`RemoteWaker`]s is used. Deregistered when dropped.
///
/// Bound to the thread of its hub: `RemoteWait` is not `Send`; its wakers are.
///
/// # Examples
///
/// ```
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use std::sync::Arc;
/// use green::__net::RemoteWait;
///
/// let wait = RemoteWait::new().unwrap();
/// let (waker, done) = (wait.waker(), Arc::new(AtomicBool::new(false)));
/// let d = done.clone();
/// let t = std::thread::spawn(move || {
///     d.store(true, Ordering::Release);
///     waker.wake();
/// });
/// while !done.load(Ordering::Acquire) {
///     wait.park(None).unwrap();
/// }
/// t.join().unwrap();
/// ```
pub struct RemoteWait {
    key: usize,
    generation: u64,
    remote: Arc<Remote>,
    _not_send: PhantomData<*const ()>,
}

/// Wakes a [`RemoteWait`] from any thread. Cheap to clone; using one whose wait was
/// dropped does nothing.
#[derive(Clone)]
pub struct RemoteWaker {
    key: usize,
    generation: u64,
    remote: Arc<Remote>,
}

impl std::fmt::Debug for RemoteWaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteWaker")
            .field("key", &self.key)
            .field("generation", &self.generation)
            .finish()
    }
}

impl std::fmt::Debug for RemoteWait {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteWait")
            .field("key", &self.key)
            .field("generation", &self.generation)
            .finish()
    }
}

impl RemoteWait {
    /// Registers a wait with this thread's hub (creating its reactor if needed).
    ///
    /// ```
    /// let wait = green::__net::RemoteWait::new().unwrap();
    /// wait.waker().wake();
    /// assert_eq!(wait.park(None), Ok(green::park::Wake::Unparked)); // woken before
    /// ```
    pub fn new() -> io::Result<RemoteWait> {
        with_hub(|h| {
            let (key, generation, remote) = h.with_reactor(|r| {
                let generation = r.next_gen();
                let key = r.remote_slots.insert(Slot {
                    generation,
                    parked: None,
                    woken: false,
                });
                (key, generation, r.remote())
            })?;
            h.blocking_pending.set(h.blocking_pending.get() + 1);
            Ok(RemoteWait {
                key,
                generation,
                remote,
                _not_send: PhantomData,
            })
        })
    }

    /// A waker for this wait, to hand to another thread.
    pub fn waker(&self) -> RemoteWaker {
        RemoteWaker {
            key: self.key,
            generation: self.generation,
            remote: self.remote.clone(),
        }
    }

    /// Parks the current greenlet until a waker of this wait is used (at once if one
    /// was used since the last park), or until `deadline`. Callers re-check their
    /// condition after it returns, as after any park.
    ///
    /// Errors as [`park`](crate::park::park) does; a kill or timeout unwinds out of it.
    pub fn park(&self, deadline: Option<Instant>) -> Result<Wake, BlockError> {
        let u = unparker();
        let woken = with_hub(|h| {
            h.with_reactor(|r| match r.remote_slots.get_mut(self.key) {
                Some(s) if s.generation == self.generation => {
                    if std::mem::take(&mut s.woken) {
                        true
                    } else {
                        s.parked = Some(u);
                        false
                    }
                }
                _ => true,
            })
            .unwrap_or(true)
        });
        if woken {
            return Ok(Wake::Unparked);
        }
        let _clear = ClearParked(self);
        park_as(deadline, ParkLabel::new("a wake from another thread"))
    }
}

/// Drops the unparker a park left in its slot (it ended by its deadline, a kill or
/// another wake): outside any borrow, since dropping it may drop a greenlet.
struct ClearParked<'a>(&'a RemoteWait);

impl Drop for ClearParked<'_> {
    fn drop(&mut self) {
        let w = self.0;
        let stale = try_with_hub(|h| {
            h.with_reactor(|r| {
                r.remote_slots
                    .get_mut(w.key)
                    .filter(|s| s.generation == w.generation)
                    .and_then(|s| s.parked.take())
            })
            .ok()
            .flatten()
        });
        drop(stale);
    }
}

impl Drop for RemoteWait {
    fn drop(&mut self) {
        let removed = try_with_hub(|h| {
            let slot = h
                .with_reactor(|r| {
                    let live = r
                        .remote_slots
                        .get(self.key)
                        .is_some_and(|s| s.generation == self.generation);
                    live.then(|| r.remote_slots.remove(self.key))
                })
                .ok()
                .flatten();
            if slot.is_some() {
                h.blocking_pending.set(h.blocking_pending.get() - 1);
            }
            slot
        });
        drop(removed);
    }
}

impl RemoteWaker {
    /// Ends the current or next park of the wait, from any thread. From the wait's own
    /// hub thread it takes effect at once; from another thread, when the hub next
    /// polls (it is interrupted if it waits).
    ///
    /// ```
    /// let wait = green::__net::RemoteWait::new().unwrap();
    /// let waker = wait.waker();
    /// std::thread::spawn(move || waker.wake()).join().unwrap();
    /// wait.park(None).unwrap(); // returns: the wake came through the hub
    /// ```
    pub fn wake(&self) {
        if hub_id() == self.remote.hub && self.wake_here() {
            return;
        }
        self.remote.post(self.key, self.generation);
    }

    /// Whether the wait's hub is still there: `false` once its thread ended (a wake
    /// then does nothing). A waker kept by a greenlet that its thread's end could not
    /// unwind (it is leaked) tells others that nothing waits behind it any more.
    ///
    /// ```
    /// use green::__net::RemoteWait;
    /// let wait = RemoteWait::new().unwrap();
    /// assert!(wait.waker().hub_alive());
    /// let elsewhere = std::thread::spawn(|| RemoteWait::new().unwrap().waker());
    /// let waker = elsewhere.join().unwrap();
    /// assert!(!waker.hub_alive()); // its thread ended, with its hub
    /// waker.wake(); // does nothing
    /// ```
    pub fn hub_alive(&self) -> bool {
        !self.remote.is_closed()
    }

    /// [`wake`](Self::wake) on the wait's own hub thread: `false` if the hub's reactor
    /// is busy (the wake is posted instead).
    fn wake_here(&self) -> bool {
        let r = try_with_hub(|h| {
            let Ok(mut reactor) = h.reactor.try_borrow_mut() else {
                return None;
            };
            let u = reactor
                .as_mut()
                .and_then(|r| wake_slot(&mut r.remote_slots, self.key, self.generation));
            drop(reactor);
            Some(u)
        })
        .flatten();
        match r {
            Some(u) => {
                if let Some(u) = u {
                    u.unpark();
                }
                true
            }
            None => false,
        }
    }
}
