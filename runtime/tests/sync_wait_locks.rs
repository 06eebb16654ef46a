//! `wait`/`iwait` on semaphores and locks: ready when they could be acquired without
//! waiting (gevent's `wait([semaphore])`).

use std::time::{Duration, Instant};

use green::{
    BoundedSemaphore, Event, Lock, RLock, Semaphore, Waitable, iwait, spawn, wait, yield_now,
};

const MS: Duration = Duration::from_millis(1);

#[test]
fn free_semaphores_and_locks_are_ready_at_once() {
    let sem = Semaphore::new(1);
    let bounded = BoundedSemaphore::new(2);
    let lock = Lock::new();
    let rlock = RLock::new();
    let objs: [&dyn Waitable; 4] = [&sem, &bounded, &lock, &rlock];
    assert_eq!(wait(&objs, None, Some(Duration::ZERO)).len(), 4);
    assert_eq!(
        (sem.available(), bounded.available()),
        (1, 2),
        "nothing acquired"
    );
    assert!(!lock.locked() && !rlock.locked());
}

#[test]
fn a_held_lock_is_ready_once_released() {
    let lock = Lock::new();
    let guard = lock.acquire().unwrap();
    assert!(!lock.is_ready());
    let l = lock.clone();
    let waiter = spawn(move || wait(&[l], None, None).len());
    yield_now();
    yield_now();
    assert!(!waiter.is_finished());
    drop(guard);
    assert_eq!(waiter.join().unwrap(), 1);
    assert!(!lock.locked());
}

#[test]
fn a_timed_out_wait_on_an_empty_semaphore_returns_nothing() {
    let sem = Semaphore::new(0);
    let t = Instant::now();
    assert!(wait(&[&sem], None, Some(5 * MS)).is_empty());
    assert!(t.elapsed() >= 5 * MS);
    sem.release().unwrap();
    assert_eq!(wait(&[&sem], None, Some(Duration::ZERO)).len(), 1);
}

#[test]
fn a_permit_handed_to_an_acquirer_does_not_make_it_ready() {
    let sem = Semaphore::new(0);
    let s = sem.clone();
    let acquirer = spawn(move || s.acquire().map(|p| p.forget()).is_ok());
    yield_now(); // in line for a permit
    let s = sem.clone();
    let waiter = spawn(move || wait(&[s], None, Some(Duration::from_millis(30))).len());
    yield_now();
    sem.release().unwrap(); // straight to the acquirer
    assert!(acquirer.join().unwrap());
    assert_eq!(waiter.join().unwrap(), 0, "no permit was ever free");
    assert!(sem.locked());
}

#[test]
fn iwait_orders_a_lock_among_other_objects() {
    let ev = Event::new();
    let lock = Lock::new();
    lock.acquire().unwrap().forget();
    let (e, l) = (ev.clone(), lock.clone());
    let setter = spawn(move || {
        green::sleep(5 * MS);
        l.release().unwrap();
        green::sleep(5 * MS);
        e.set();
    });
    let objs: [&dyn Waitable; 2] = [&ev, &lock];
    // Whether the event was set when each object came out: the lock came first.
    let order: Vec<bool> = iwait(&objs, None).map(|_| ev.is_set()).collect();
    assert_eq!(order, [false, true]);
    setter.join().unwrap();
}

#[test]
fn an_rlock_is_ready_for_its_owner_and_for_others_once_free() {
    let rlock = RLock::new();
    let guard = rlock.acquire().unwrap();
    assert_eq!(
        wait(&[&rlock], None, Some(Duration::ZERO)).len(),
        1,
        "the owner may re-acquire"
    );
    let r = rlock.clone();
    let other = spawn(move || {
        let ready = wait(&[&r], None, None).len();
        (ready, r.try_acquire().is_some())
    });
    yield_now();
    assert!(!other.is_finished());
    drop(guard);
    assert_eq!(other.join().unwrap(), (1, true));
}

#[test]
fn a_bounded_semaphore_wakes_its_waiter_on_release() {
    let sem = BoundedSemaphore::new(1);
    sem.acquire().unwrap().forget();
    let s = sem.clone();
    let waiter = spawn(move || wait(&[s], None, None).len());
    yield_now();
    assert!(!waiter.is_finished());
    sem.release().unwrap();
    assert_eq!(waiter.join().unwrap(), 1);
}
