//! Pools, groups, wait/iwait and links: gevent's test__pool.py, test__wait.py
//! behaviours.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use green::{Event, Group, Pool, Waitable, sleep, spawn, yield_now};

const MS: Duration = Duration::from_millis(1);

/// Sleeps `ms` milliseconds, then returns it.
fn nap(ms: u64) -> u64 {
    sleep(Duration::from_millis(ms));
    ms
}

#[test]
fn map_keeps_input_order() {
    for size in [1, 3] {
        let pool = Pool::new(size);
        assert_eq!(pool.map(nap, [30, 10, 20]), [30, 10, 20]);
        let ordered: Vec<u64> = pool.imap(nap, [30, 10, 20]).collect();
        assert_eq!(ordered, [30, 10, 20]);
    }
}

#[test]
fn imap_unordered_is_completion_order() {
    // Size 1: one at a time, so completion order is input order.
    let pool = Pool::new(1);
    let got: Vec<u64> = pool.imap_unordered(nap, [30, 10, 20]).collect();
    assert_eq!(got, [30, 10, 20]);
    // Size 3: all at once, so the shortest finishes first.
    let pool = Pool::new(3);
    let got: Vec<u64> = pool.imap_unordered(nap, [30, 10, 20]).collect();
    assert_eq!(got, [10, 20, 30]);
}

#[test]
fn spawn_waits_while_full_and_free_count() {
    let pool = Pool::new(2);
    let running = Rc::new(Cell::new(0));
    let peak = Rc::new(Cell::new(0));
    for _ in 0..6 {
        let (r, p) = (running.clone(), peak.clone());
        pool.spawn(move || {
            r.set(r.get() + 1);
            p.set(p.get().max(r.get()));
            sleep(2 * MS);
            r.set(r.get() - 1);
        });
        assert!(pool.len() <= 2);
    }
    assert_eq!(pool.free_count(), 0);
    pool.join().unwrap();
    assert_eq!(peak.get(), 2);
    assert_eq!(pool.free_count(), 2);
}

#[test]
fn imap_is_lazy() {
    let started = Rc::new(Cell::new(0));
    let s = started.clone();
    let pool = Pool::new(2);
    let mut it = pool.imap(
        move |x: u32| {
            s.set(s.get() + 1);
            x
        },
        0..1000,
    );
    assert_eq!(it.next(), Some(0));
    assert!(
        started.get() <= 4,
        "started {} tasks for one result",
        started.get()
    );
}

#[test]
fn pool_in_pool_does_not_deadlock() {
    let pool = Pool::new(1);
    let p = pool.clone();
    let h = pool.spawn(move || {
        // The pool is full (we hold its only slot): these run inline.
        let a = p.apply(|| 20).unwrap();
        let v = p.map(|x: i32| x + 1, [1, 2]);
        a + v.iter().sum::<i32>()
    });
    let t = Instant::now();
    assert_eq!(h.join().unwrap(), 25);
    assert!(t.elapsed() < Duration::from_secs(5));
    // From outside, apply uses the pool.
    assert_eq!(pool.apply(|| 3).unwrap(), 3);
}

#[test]
fn group_join_and_kill() {
    let group = Group::new();
    let killed = group.spawn(|| sleep(Duration::from_secs(10)));
    let done = group.spawn(|| 1);
    yield_now();
    assert_eq!(group.len(), 1);
    assert!(!group.join_timeout(2 * MS));
    group.kill();
    assert!(group.is_empty());
    assert!(killed.join().unwrap_err().is_killed());
    assert_eq!(done.join().unwrap(), 1);
    group.join().unwrap();
}

#[test]
fn task_panic_is_reraised_by_map() {
    let pool = Pool::new(2);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        pool.map(
            |x: i32| {
                if x == 2 {
                    panic!("two")
                }
                x
            },
            [1, 2, 3],
        )
    }));
    assert_eq!(r.unwrap_err().downcast_ref::<&str>(), Some(&"two"));
}

#[test]
fn iwait_yields_in_readiness_order() {
    let hs: Vec<_> = [30u64, 10, 20]
        .into_iter()
        .map(|ms| spawn(move || nap(ms)))
        .collect();
    let order: Vec<u64> = green::iwait(&hs, None)
        .map(|h| h.value().unwrap())
        .collect();
    assert_eq!(order, [10, 20, 30]);
}

#[test]
fn wait_count_and_timeout_with_mixed_objects() {
    let ev = Event::new();
    let slow = spawn(|| nap(10_000));
    let quick = spawn(|| nap(1));
    let objs: [&dyn Waitable; 3] = [&ev, &slow, &quick];
    let ready = green::wait(&objs, Some(1), None);
    assert_eq!(ready.len(), 1);
    assert!(quick.is_ready());
    let ready = green::wait(&objs, None, Some(5 * MS));
    assert_eq!(ready.len(), 1, "only `quick` is ready");
    ev.set();
    let ready = green::wait(&objs, Some(2), Some(Duration::from_secs(5)));
    assert_eq!(ready.len(), 2);
    slow.kill();
}

#[test]
fn links_run_in_registration_order_also_after_completion() {
    let log = Rc::new(RefCell::new(Vec::new()));
    let h = spawn(|| 5);
    let l = log.clone();
    h.link(move |_| l.borrow_mut().push("link"));
    let l = log.clone();
    h.link_value(move |v| l.borrow_mut().push(if *v == 5 { "value" } else { "?" }));
    let l = log.clone();
    h.link_error(move |_| l.borrow_mut().push("error"));
    h.wait().unwrap();
    let l = log.clone();
    h.link_value(move |_| l.borrow_mut().push("late"));
    assert_eq!(*log.borrow(), ["link", "value", "late"]);
    let bad = spawn(|| panic!("x"));
    let l = log.clone();
    bad.link_error(move |e| {
        l.borrow_mut()
            .push(if e.is_panic() { "panic" } else { "?" })
    });
    let _ = bad.wait();
    assert_eq!(log.borrow().last(), Some(&"panic"));
}
