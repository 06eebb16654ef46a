//! `wait`/`iwait` withdraw the callbacks they register: waits that end by timeout,
//! because another object became ready first, or by a kill or `Timeout` unwinding the
//! waiter leave nothing registered on the objects they waited for.
//!
//! The objects are wrapped in [`Counted`], a `Waitable` that delegates to them and
//! counts the callbacks the inner object still holds (each carries a token that is
//! dropped when the inner object drops the callback: withdrawn or run).

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use green::{
    AsyncResult, Event, JoinHandle, Registration, Waitable, iwait, spawn, wait, yield_now,
};

const MS: Duration = Duration::from_millis(1);

struct Counted<W> {
    inner: W,
    live: Rc<()>,
}

impl<W> Counted<W> {
    fn new(inner: W) -> Self {
        Counted {
            inner,
            live: Rc::new(()),
        }
    }

    /// Callbacks the inner object holds (not yet withdrawn, not yet run).
    fn registered(&self) -> usize {
        Rc::strong_count(&self.live) - 1
    }
}

impl<W: Waitable> Waitable for Counted<W> {
    fn is_ready(&self) -> bool {
        self.inner.is_ready()
    }

    fn on_ready(&self, f: Box<dyn FnOnce()>) -> Registration {
        let token = self.live.clone();
        self.inner.on_ready(Box::new(move || {
            let _token = token;
            f()
        }))
    }
}

fn sleeper() -> JoinHandle<()> {
    spawn(|| green::sleep(Duration::from_secs(60)))
}

#[test]
fn timed_out_waits_on_an_event_leave_no_callbacks() {
    let ev = Counted::new(Event::new());
    for _ in 0..1000 {
        assert!(wait(&[&ev], None, Some(Duration::ZERO)).is_empty());
    }
    assert_eq!(ev.registered(), 0);
    // Still works afterwards.
    let e = ev.inner.clone();
    spawn(move || e.set());
    assert_eq!(wait(&[&ev], None, Some(Duration::from_secs(5))).len(), 1);
    assert_eq!(ev.registered(), 0);
}

#[test]
fn timed_out_waits_on_a_greenlet_leave_no_exit_callbacks() {
    let h = Counted::new(sleeper());
    for _ in 0..1000 {
        assert!(wait(&[&h], None, Some(Duration::ZERO)).is_empty());
    }
    assert_eq!(h.registered(), 0);
    h.inner.kill();
    assert!(h.is_ready());
}

#[test]
fn timed_out_waits_on_an_async_result_leave_no_callbacks() {
    let r = Counted::new(AsyncResult::<i32>::new());
    for _ in 0..1000 {
        assert!(wait(&[&r], Some(1), Some(Duration::ZERO)).is_empty());
    }
    assert_eq!(r.registered(), 0);
    r.inner.set(7);
    assert_eq!(wait(&[&r], None, None).len(), 1);
}

#[test]
fn timed_out_iwait_withdraws_when_it_ends_not_when_dropped() {
    let ev = Counted::new(Event::new());
    let objs = [&ev];
    let mut it = iwait(&objs, Some(MS));
    assert_eq!(ev.registered(), 1);
    assert!(it.next().is_none());
    assert_eq!(ev.registered(), 0);
    drop(it);
}

#[test]
fn dropping_an_unfinished_iwait_withdraws() {
    let a = Counted::new(Event::new());
    let b = Counted::new(Event::new());
    a.inner.set();
    let objs = [&a, &b];
    let mut it = iwait(&objs, None);
    assert!(std::ptr::eq(*it.next().unwrap(), &a));
    assert_eq!(b.registered(), 1);
    drop(it);
    assert_eq!(b.registered(), 0);
}

#[test]
fn the_first_ready_object_leaves_nothing_on_the_others() {
    let a = Counted::new(Event::new());
    let b = Counted::new(Event::new());
    let g = Counted::new(sleeper());
    let r = Counted::new(AsyncResult::<()>::new());
    let e = a.inner.clone();
    spawn(move || {
        green::sleep(MS);
        e.set()
    });
    let objs: [&dyn Waitable; 4] = [&b, &a, &g, &r];
    let done = wait(&objs, Some(1), Some(Duration::from_secs(5)));
    assert_eq!(done.len(), 1);
    assert!(a.is_ready());
    assert_eq!(
        a.registered() + b.registered() + g.registered() + r.registered(),
        0
    );
    g.inner.kill();
}

#[test]
fn every_object_ready_leaves_nothing() {
    let hs: Vec<Counted<JoinHandle<u64>>> = [3u64, 1, 2]
        .into_iter()
        .map(|ms| {
            Counted::new(spawn(move || {
                green::sleep(Duration::from_millis(ms));
                ms
            }))
        })
        .collect();
    let order: Vec<u64> = iwait(&hs, None).map(|h| h.inner.value().unwrap()).collect();
    assert_eq!(order, [1, 2, 3]);
    assert!(hs.iter().all(|h| h.registered() == 0));
}

#[test]
fn killing_a_waiter_withdraws_its_callbacks() {
    let ev = Rc::new(Counted::new(Event::new()));
    let g = Rc::new(Counted::new(sleeper()));
    let (e, gg) = (ev.clone(), g.clone());
    let waiter = spawn(move || {
        let objs: [&dyn Waitable; 2] = [&*e, &*gg];
        wait(&objs, None, None).len()
    });
    yield_now();
    assert_eq!((ev.registered(), g.registered()), (1, 1));
    waiter.kill();
    assert!(waiter.join().unwrap_err().is_killed());
    assert_eq!((ev.registered(), g.registered()), (0, 0));
    g.inner.kill();
}

#[test]
fn a_timeout_unwinding_a_waiter_withdraws_its_callbacks() {
    let ev = Rc::new(Counted::new(Event::new()));
    let e = ev.clone();
    let waiter = spawn(move || green::with_timeout(MS, || wait(&[&*e], None, None).len()));
    assert!(waiter.join().unwrap().is_err());
    assert_eq!(ev.registered(), 0);
}

#[test]
fn callbacks_registered_directly_are_withdrawn_by_dropping_or_kept_by_detach() {
    let ev = Event::new();
    let ran = Rc::new(Cell::new(0));
    let r = ran.clone();
    let dropped = ev.on_ready(Box::new(move || r.set(r.get() + 1)));
    let r = ran.clone();
    ev.on_ready(Box::new(move || r.set(r.get() + 10))).detach();
    drop(dropped);
    ev.set();
    assert_eq!(ran.get(), 10);
    // Ready: runs at once, nothing to withdraw.
    let r = ran.clone();
    drop(ev.on_ready(Box::new(move || r.set(r.get() + 100))));
    assert_eq!(ran.get(), 110);
}

#[test]
fn an_exit_callback_is_withdrawn_or_runs_once() {
    let h = sleeper();
    let ran = Rc::new(Cell::new(0));
    let r = ran.clone();
    let kept = h.on_ready(Box::new(move || r.set(r.get() + 1)));
    let r = ran.clone();
    drop(h.on_ready(Box::new(move || r.set(r.get() + 10))));
    h.kill();
    assert_eq!(ran.get(), 1);
    drop(kept); // already ran: nothing to do
    assert_eq!(ran.get(), 1);
}

#[test]
fn a_custom_registration_runs_its_withdrawal_on_drop_only() {
    let withdrawn = Rc::new(Cell::new(0));
    let w = withdrawn.clone();
    drop(Registration::new(move || w.set(w.get() + 1)));
    let w = withdrawn.clone();
    Registration::new(move || w.set(w.get() + 1)).detach();
    drop(Registration::empty());
    drop(Registration::default());
    assert_eq!(withdrawn.get(), 1);
}

// Queues, locks and pools keep parked waiters (not callbacks) in guarded lists: timed
// out waits already left nothing behind. These guard that it stays so.

#[test]
fn timed_out_queue_waits_leave_no_waiters() {
    let q: green::Queue<u8> = green::Queue::bounded(1);
    for _ in 0..1000 {
        assert!(q.get_timeout(Duration::ZERO).is_err());
    }
    assert_eq!(q.getters(), 0);
    q.put(1).unwrap();
    for _ in 0..1000 {
        assert!(q.put_timeout(2, Duration::ZERO).is_err());
    }
    assert_eq!(q.putters(), 0);
    assert_eq!(q.get(), Ok(1));
}

#[test]
fn timed_out_lock_and_pool_waits_leave_nothing_in_the_way() {
    let lock = green::Lock::new();
    let held = lock.acquire().unwrap();
    for _ in 0..1000 {
        assert!(lock.acquire_timeout(Duration::ZERO).is_err());
    }
    drop(held);
    // No stale waiter is served first: the lock is free at once.
    assert!(lock.try_acquire().is_some());

    let pool = green::Pool::new(1);
    pool.spawn(|| green::sleep(Duration::from_secs(60)));
    for _ in 0..1000 {
        assert!(!pool.join_timeout(Duration::ZERO));
    }
    pool.kill();
    assert_eq!(pool.free_count(), 1);
    assert!(pool.join_timeout(Duration::ZERO));
}

#[test]
fn a_panicking_event_callback_does_not_stop_the_others() {
    let ev = Event::new();
    ev.on_ready(Box::new(|| panic!("a buggy callback")))
        .detach();
    let ran = Rc::new(Cell::new(false));
    let r = ran.clone();
    ev.on_ready(Box::new(move || r.set(true))).detach();
    let e = ev.clone();
    let waiter = spawn(move || wait(&[e], None, Some(Duration::from_secs(3))).len());
    yield_now();
    // The panic goes on out of `set`, after every callback ran.
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| ev.set()));
    assert!(r.is_err());
    assert!(ran.get());
    assert_eq!(waiter.join().unwrap(), 1);
}
