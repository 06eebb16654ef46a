//! The functions over several handles: [`joinall`], [`joinall_timeout`], [`killall`],
//! [`killall_nowait`] and [`try_joinall`].

use std::time::Duration;

use super::JoinHandle;
use super::handle::wait_dead;
use crate::greenlet::error::{BlockError, GreenletExit, JoinError};
use crate::greenlet::record::ParkLabel;
use crate::greenlet::thread;
use crate::hub::park::{park_as, unparker};
use crate::hub::timer::deadline_after;
use crate::hub::{in_hub_panic, throw, with_hub};

/// Waits for every greenlet and returns their outcomes in the order given
/// (gevent's `joinall`).
///
/// # Examples
///
/// Ten tasks that each sleep 100 ms run side by side: together they take about 100 ms,
/// far less than the 1 s they would take one after the other.
///
/// ```
/// use std::time::{Duration, Instant};
/// let t = Instant::now();
/// let tasks: Vec<_> = (0..10)
///     .map(|pid| green::spawn(move || { green::sleep(Duration::from_millis(100)); pid }))
///     .collect();
/// let pids: Vec<i32> = green::joinall(tasks).into_iter().map(Result::unwrap).collect();
/// assert_eq!(pids, (0..10).collect::<Vec<_>>());
/// assert!(t.elapsed() < Duration::from_millis(900));
/// ```
pub fn joinall<T: 'static>(
    handles: impl IntoIterator<Item = JoinHandle<T>>,
) -> Vec<Result<T, JoinError>> {
    handles.into_iter().map(JoinHandle::join).collect()
}

/// Waits up to `timeout` for every greenlet to finish; returns whether all did. The
/// handles stay usable (read values with [`JoinHandle::value`] or join them again).
///
/// # Panics
///
/// When it has to wait in the hub (a timer callback or a link), which must not wait or
/// switch (as [`sleep`](crate::sleep) does).
///
/// ```
/// use std::time::Duration;
/// let quick = green::spawn(|| green::sleep(Duration::from_millis(1)));
/// let slow = green::spawn(|| green::sleep(Duration::from_secs(9)));
/// let hs = vec![quick, slow];
/// assert!(!green::joinall_timeout(&hs, Duration::from_millis(20)));
/// assert!(hs[0].is_finished() && !hs[1].is_finished());
/// hs[1].kill();
/// ```
pub fn joinall_timeout<T: 'static>(handles: &[JoinHandle<T>], timeout: Duration) -> bool {
    let deadline = deadline_after(timeout);
    handles
        .iter()
        .all(|h| match wait_dead(&h.g, Some(deadline)) {
            Err(JoinError::Blocked(BlockError::InHub)) => in_hub_panic("joinall_timeout"),
            r => matches!(r, Ok(true)),
        })
}

/// Kills every greenlet (gevent's `killall`): raises [`GreenletExit`] in each at its
/// switch point, then waits until all are dead, or until `timeout` passes (`None`: no
/// limit). Returns whether every one is dead. A greenlet that catches its kill and
/// goes on keeps running (and this waits for its end, up to `timeout`).
///
/// The caller, if it is one of them, is neither killed nor waited for (it could not
/// wait for its own death). From the hub (a timer callback or a link) it only
/// delivers the kills, as [`killall_nowait`] does, and returns whether all are dead.
///
/// ```
/// use std::time::Duration;
/// let hs: Vec<_> = (0..3)
///     .map(|_| green::spawn(|| green::sleep(Duration::from_secs(60))))
///     .collect();
/// green::yield_now();
/// assert!(green::killall(&hs, None));
/// assert!(hs.iter().all(|h| h.is_finished()));
/// ```
pub fn killall<T: 'static>(handles: &[JoinHandle<T>], timeout: Option<Duration>) -> bool {
    killall_nowait(handles);
    let others = || handles.iter().filter(|h| !h.g.is_current());
    if thread::in_scheduler() {
        return others().all(|h| h.g.dead());
    }
    let deadline = timeout.map(deadline_after);
    // Each is waited for (until the deadline), even after one that will not die.
    let mut all = true;
    for h in others() {
        all &= matches!(wait_dead(&h.g, deadline), Ok(true));
    }
    all
}

/// Delivers a kill to every greenlet (but the caller) without waiting for them to die
/// (gevent's `killall(block=False)`); they die when the hub next runs them.
///
/// ```
/// let hs = vec![green::spawn(|| 1), green::spawn(|| 2)];
/// green::killall_nowait(&hs);
/// assert!(hs.into_iter().all(|h| h.join().unwrap_err().is_killed()));
/// ```
pub fn killall_nowait<T: 'static>(handles: &[JoinHandle<T>]) {
    with_hub(|hub| {
        for h in handles.iter().filter(|h| !h.g.is_current()) {
            throw::deliver(hub, &h.g, Box::new(GreenletExit));
        }
    });
}

/// Waits for every greenlet, but returns the first failure as soon as it happens
/// (gevent's `joinall(raise_error=True)`); on success, the values in the order given.
/// Greenlets still running when an error is returned keep running.
///
/// ```
/// use std::time::Duration;
/// let ok = green::try_joinall(vec![green::spawn(|| 1), green::spawn(|| 2)]).unwrap();
/// assert_eq!(ok, [1, 2]);
/// let slow = green::spawn(|| { green::sleep(Duration::from_secs(5)); 0 });
/// let bad = green::spawn(|| -> i32 { panic!("bad") });
/// let err = green::try_joinall(vec![slow, bad]).unwrap_err();
/// assert_eq!(err.panic_message(), Some("bad"));
/// ```
pub fn try_joinall<T: 'static>(handles: Vec<JoinHandle<T>>) -> Result<Vec<T>, JoinError> {
    loop {
        for h in &handles {
            if h.g.dead() && !h.is_successful() {
                return Err(h.take_result().err().unwrap_or(JoinError::Taken));
            }
        }
        let pending: Vec<&JoinHandle<T>> = handles.iter().filter(|h| !h.g.dead()).collect();
        if pending.is_empty() {
            return handles.into_iter().map(|h| h.take_result()).collect();
        }
        let u = unparker();
        // Withdrawn when this round ends (one finished, or a kill unwinds us): the
        // greenlets still running do not collect a callback per round.
        let _registrations: Vec<crate::api::sync::Registration> = pending
            .iter()
            .map(|h| {
                let u = u.clone();
                crate::api::sync::registration::on_exit(
                    &h.g,
                    Box::new(move || {
                        u.unpark();
                    }),
                )
            })
            .collect();
        park_as(None, ParkLabel::new("joinall"))?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::spawn::spawn;

    #[test]
    fn try_joinall_leaves_no_callbacks_on_greenlets_still_running() {
        use crate::api::sync::registration::exit_callback_count;
        let nap = |ms: u64| crate::hub::time::sleep(Duration::from_millis(ms));
        let slow = spawn(move || {
            nap(60_000);
            0
        });
        let g = slow.greenlet().clone();
        let mut all = vec![slow];
        all.extend((1..4).map(|ms| {
            spawn(move || {
                nap(ms);
                ms
            })
        }));
        all.push(spawn(move || -> u64 {
            nap(8);
            panic!("bad")
        }));
        // Four rounds (three quick ones, then the failure), one registration each on
        // `slow`, each withdrawn when its round ends.
        assert!(try_joinall(all).unwrap_err().is_panic());
        assert_eq!(exit_callback_count(&g), 0);
        assert_eq!(g.0.cold.on_exit.borrow().len(), 1); // the one dispatcher
        crate::hub::throw::throw_into(&g, Box::new(crate::greenlet::error::GreenletExit));
        assert!(wait_dead(&g, None).unwrap());
    }
}
