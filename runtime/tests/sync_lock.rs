//! Locks and events: gevent's test__semaphore.py, test__event.py behaviours.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use green::{
    AsyncError, AsyncResult, BoundedSemaphore, Event, Lock, LockError, RLock, Semaphore, spawn,
    yield_now,
};

const MS: Duration = Duration::from_millis(1);

#[test]
fn semaphore_waiters_are_served_fifo() {
    let sem = Semaphore::new(1);
    let order = Rc::new(RefCell::new(Vec::new()));
    let first = sem.acquire().unwrap();
    let hs: Vec<_> = (0..5)
        .map(|i| {
            let (sem, order) = (sem.clone(), order.clone());
            spawn(move || {
                let _p = sem.acquire().unwrap();
                order.borrow_mut().push(i);
                yield_now();
            })
        })
        .collect();
    yield_now();
    drop(first);
    // A latecomer must not overtake the waiters.
    let (s, o) = (sem.clone(), order.clone());
    let late = spawn(move || {
        let _p = s.acquire().unwrap();
        o.borrow_mut().push(99);
    });
    green::joinall(hs);
    late.join().unwrap();
    assert_eq!(*order.borrow(), [0, 1, 2, 3, 4, 99]);
}

#[test]
fn timed_out_waiter_leaves_the_line() {
    let sem = Semaphore::new(0);
    let s = sem.clone();
    let quitter = spawn(move || s.acquire_timeout(2 * MS).map(|p| p.forget()));
    let s = sem.clone();
    let patient = spawn(move || s.acquire().map(|p| p.forget()));
    assert_eq!(quitter.join().unwrap().unwrap_err(), LockError::TimedOut);
    sem.release().unwrap();
    patient.join().unwrap().unwrap();
    assert_eq!(sem.available(), 0);
}

#[test]
fn kill_of_lock_holder_releases_it() {
    let lock = Lock::new();
    let l = lock.clone();
    let holder = spawn(move || {
        let _g = l.acquire().unwrap();
        green::sleep(Duration::from_secs(10));
    });
    yield_now();
    assert!(lock.locked());
    let l = lock.clone();
    let waiter = spawn(move || l.acquire().map(|_| "got it"));
    yield_now();
    holder.kill();
    assert_eq!(waiter.join().unwrap().unwrap(), "got it");
    assert!(!lock.locked());
}

#[test]
fn waiter_killed_after_handoff_passes_permit_on() {
    let sem = Semaphore::new(0);
    let s = sem.clone();
    let victim = spawn(move || s.acquire().map(|p| p.forget()));
    let s = sem.clone();
    let other = spawn(move || s.acquire().map(|p| p.forget()));
    yield_now();
    sem.release().unwrap(); // handed to `victim`, which has not run yet
    victim.kill_nowait();
    assert!(victim.join().unwrap_err().is_killed());
    other.join().unwrap().unwrap();
}

#[test]
fn rlock_reentry_and_foreign_release() {
    let lock = RLock::new();
    let a = lock.acquire().unwrap();
    let b = lock.acquire().unwrap();
    assert!(lock.is_owned());
    let l = lock.clone();
    let foreign = spawn(move || (l.release(), l.try_acquire().is_none()));
    assert_eq!(foreign.join().unwrap(), (Err(LockError::NotOwner), true));
    drop(b);
    assert!(lock.locked());
    drop(a);
    assert!(!lock.locked());
    let l = lock.clone();
    assert!(spawn(move || l.try_acquire().is_some()).join().unwrap());
}

#[test]
fn bounded_semaphore_over_release() {
    let s = BoundedSemaphore::new(2);
    assert_eq!(s.release(), Err(LockError::OverReleased));
    s.acquire().unwrap().forget();
    assert_eq!(s.release(), Ok(()));
    assert_eq!(s.release(), Err(LockError::OverReleased));
    assert_eq!(s.available(), 2);
    let plain = Semaphore::new(1);
    plain.release().unwrap();
    assert_eq!(plain.available(), 2);
}

#[test]
fn event_wakes_1000_waiters_after_set_and_clear() {
    let ev = Event::new();
    let woke = Rc::new(Cell::new(0));
    let hs: Vec<_> = (0..1000)
        .map(|_| {
            let (ev, woke) = (ev.clone(), woke.clone());
            spawn(move || {
                if ev.wait().unwrap() {
                    woke.set(woke.get() + 1);
                }
            })
        })
        .collect();
    yield_now();
    ev.set();
    ev.clear();
    green::joinall(hs);
    assert_eq!(woke.get(), 1000);
    assert!(!ev.is_set());
    assert_eq!(ev.wait_timeout(MS), Ok(false));
}

#[test]
fn async_result_get_and_errors() {
    let r: AsyncResult<i32> = AsyncResult::new();
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let r = r.clone();
            spawn(move || r.get())
        })
        .collect();
    yield_now();
    assert!(!r.ready());
    r.set(5);
    for h in readers {
        assert_eq!(h.join().unwrap(), Ok(5));
    }
    assert!(r.successful());
    let e: AsyncResult<i32> = AsyncResult::new();
    assert_eq!(e.get_timeout(MS), Err(AsyncError::TimedOut));
    e.set_error("bad".into());
    assert_eq!(e.get(), Err(AsyncError::Failed("bad".into())));
    assert!(e.ready() && !e.successful());
}

#[test]
fn semaphore_release_past_usize_max_is_refused_not_wrapped() {
    let sem = Semaphore::new(usize::MAX);
    assert_eq!(sem.release(), Err(LockError::OverReleased));
    assert_eq!(sem.available(), usize::MAX);
    // A permit dropped while the count is full again is not counted back either.
    let p = sem.acquire().unwrap();
    assert_eq!(sem.release(), Ok(()));
    drop(p);
    assert_eq!(sem.available(), usize::MAX);
    // Bounded at `usize::MAX`: refused by the bound, not wrapped.
    let b = BoundedSemaphore::new(usize::MAX);
    assert_eq!(b.release(), Err(LockError::OverReleased));
    assert_eq!(b.available(), usize::MAX);
}

#[test]
fn a_failed_try_acquire_never_makes_a_second_holder() {
    let lock = Lock::new();
    let held = lock.acquire().unwrap();
    for _ in 0..3 {
        assert!(lock.try_acquire().is_none(), "a second holder of a Lock");
    }
    assert!(lock.locked());
    drop(held);
    assert!(!lock.locked());
    assert_eq!(lock.release(), Err(LockError::OverReleased));

    let sem = Semaphore::new(1);
    let p = sem.acquire().unwrap();
    for _ in 0..3 {
        assert!(sem.try_acquire().is_none());
    }
    assert_eq!(sem.available(), 0);
    drop(p);
    assert_eq!(sem.available(), 1);

    let bounded = BoundedSemaphore::new(1);
    let p = bounded.acquire().unwrap();
    assert!(bounded.try_acquire().is_none());
    assert!(bounded.try_acquire().is_none());
    assert_eq!(bounded.available(), 0);
    drop(p);
    assert_eq!(bounded.available(), 1);

    // An RLock owned by main: other greenlets' failed tries leave it main's alone.
    let rlock = RLock::new();
    let owned = rlock.acquire().unwrap();
    let tries: Vec<_> = (0..3)
        .map(|_| {
            let l = rlock.clone();
            spawn(move || l.try_acquire().map(|g| g.forget()).is_some())
        })
        .collect();
    let got: Vec<bool> = green::joinall(tries)
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(got, [false, false, false], "a second owner of an RLock");
    assert!(rlock.is_owned());
    drop(owned);
    assert!(!rlock.locked());
}
