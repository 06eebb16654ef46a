//! `apply_async`, `map_async` and a bound on `imap`'s tasks in flight (gevent's
//! `apply_async`, `map_async`, `imap(maxsize=)`).

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use green::{AsyncError, Group, JoinError, Pool, sleep, yield_now};

const MS: Duration = Duration::from_millis(1);

#[test]
fn apply_async_returns_at_once_and_delivers_the_value() {
    let pool = Pool::new(2);
    let ran = Rc::new(Cell::new(false));
    let r = ran.clone();
    let res = pool.apply_async(move || {
        r.set(true);
        7
    });
    assert!(!ran.get() && !res.ready(), "nothing ran before we blocked");
    assert_eq!(pool.len(), 1, "the task is a member of the pool");
    assert_eq!(res.get().unwrap(), 7);
    assert!(ran.get());
}

#[test]
fn apply_async_on_a_full_pool_does_not_wait_and_keeps_the_bound() {
    let pool = Pool::new(1);
    let running = Rc::new(Cell::new(0));
    let peak = Rc::new(Cell::new(0));
    let results: Vec<_> = (0..4)
        .map(|i| {
            let (r, p) = (running.clone(), peak.clone());
            pool.apply_async(move || {
                r.set(r.get() + 1);
                p.set(p.get().max(r.get()));
                sleep(MS);
                r.set(r.get() - 1);
                i
            })
        })
        .collect();
    let got: Vec<i32> = results.iter().map(|r| r.get().unwrap()).collect();
    assert_eq!(got, [0, 1, 2, 3]);
    assert_eq!(peak.get(), 1);
}

#[test]
fn apply_async_puts_a_panic_in_the_result() {
    let pool = Pool::new(1);
    let res = pool.apply_async(|| -> u8 { panic!("boom") });
    match res.get() {
        Err(AsyncError::Failed(e)) => assert_eq!(e.panic_message(), Some("boom")),
        other => panic!("unexpected {other:?}"),
    }
    pool.join().unwrap();
    assert_eq!(pool.free_count(), 1);
}

#[test]
fn a_killed_task_makes_the_result_an_error() {
    let group = Group::new();
    let res = group.apply_async(|| sleep(Duration::from_secs(5)));
    yield_now(); // started, sleeping
    group.kill();
    assert!(matches!(res.try_get(), Err(AsyncError::Failed(e)) if e.is_killed()));
    // Killed before it ever started.
    let res = group.apply_async(|| 1);
    group.kill();
    assert!(matches!(res.try_get(), Err(AsyncError::Failed(e)) if e.is_killed()));
}

#[test]
fn a_task_waiting_for_a_slot_runs_once_a_kill_frees_one() {
    let pool = Pool::new(1);
    let busy = pool.spawn(|| sleep(Duration::from_secs(5)));
    let res = pool.apply_async(|| 1);
    yield_now(); // its helper waits for the slot
    assert!(!res.ready());
    busy.kill();
    assert_eq!(res.get_timeout(Duration::from_secs(5)).unwrap(), 1);
}

#[test]
fn map_async_returns_at_once_with_the_results_in_order() {
    let pool = Pool::new(3);
    let res = pool.map_async(
        |ms: u64| {
            sleep(Duration::from_millis(ms));
            ms
        },
        vec![20, 5, 10],
    );
    assert!(!res.ready());
    assert_eq!(res.get().unwrap(), [20, 5, 10]);
    assert!(pool.is_empty());
}

#[test]
fn map_async_fails_with_the_first_panic() {
    let pool = Pool::new(2);
    let res = pool.map_async(
        |x: i32| {
            if x == 2 {
                panic!("two");
            }
            x
        },
        0..4,
    );
    match res.get() {
        Err(AsyncError::Failed(e)) => {
            assert!(matches!(*e, JoinError::Panicked(_)));
            assert_eq!(e.panic_message(), Some("two"));
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn imap_max_in_flight_bounds_the_tasks_started_and_unyielded() {
    let started = Rc::new(Cell::new(0u32));
    let s = started.clone();
    let group = Group::new();
    let it = group
        .imap(
            move |x: u32| {
                s.set(s.get() + 1);
                sleep(MS);
                x
            },
            0..50,
        )
        .max_in_flight(4);
    let mut yielded = 0;
    for x in it {
        assert_eq!(x, yielded);
        yielded += 1;
        assert!(
            started.get() - yielded <= 4,
            "{} started, {yielded} yielded",
            started.get()
        );
        assert!(group.len() <= 4);
    }
    assert_eq!(yielded, 50);
}

#[test]
fn imap_unordered_max_in_flight_of_zero_runs_one_at_a_time() {
    let running = Rc::new(Cell::new(0));
    let peak = Rc::new(Cell::new(0));
    let (r, p) = (running.clone(), peak.clone());
    let group = Group::new();
    let got: Vec<u64> = group
        .imap_unordered(
            move |ms: u64| {
                r.set(r.get() + 1);
                p.set(p.get().max(r.get()));
                sleep(Duration::from_millis(ms));
                r.set(r.get() - 1);
                ms
            },
            [6, 2, 4],
        )
        .max_in_flight(0)
        .collect();
    assert_eq!(got, [6, 2, 4], "one at a time: input order");
    assert_eq!(peak.get(), 1);
}

#[test]
fn imap_without_a_bound_starts_every_task_of_a_group() {
    let started = Rc::new(Cell::new(0));
    let s = started.clone();
    let group = Group::new();
    let mut it = group.imap(
        move |x: u32| {
            s.set(s.get() + 1);
            x
        },
        0..20,
    );
    assert_eq!(it.next(), Some(0));
    assert_eq!(started.get(), 20);
}
