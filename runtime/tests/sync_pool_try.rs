//! Pools without waiting: `try_spawn`, `try_add` and `PoolFull`, `Pool::try_new`, and
//! `wait_available` (gevent's `add(blocking=False)`, `wait_available`).

use std::io;
use std::time::{Duration, Instant};

use green::{Group, Pool, PoolFull, PoolSizeError, sleep, spawn, yield_now};

const MS: Duration = Duration::from_millis(1);

fn is_pool_full(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock && e.get_ref().is_some_and(|e| e.is::<PoolFull>())
}

#[test]
fn try_spawn_fails_when_full_and_takes_no_slot() {
    let pool = Pool::new(2);
    let a = pool.try_spawn(|| sleep(5 * MS)).unwrap();
    let b = pool.try_spawn(|| sleep(5 * MS)).unwrap();
    let e = pool.try_spawn(|| ()).unwrap_err();
    assert!(is_pool_full(&e), "{e:?}");
    assert_eq!(e.to_string(), "the pool is full");
    assert_eq!((pool.len(), pool.free_count()), (2, 0));
    a.join().unwrap();
    b.join().unwrap();
    assert_eq!(pool.free_count(), 2, "the failed try took no slot");
    let c = pool.try_spawn(|| 3).unwrap();
    assert!(pool.contains(c.greenlet()));
    assert_eq!(c.join().unwrap(), 3);
}

#[test]
fn try_spawn_does_not_overtake_a_waiting_spawner() {
    let pool = Pool::new(1);
    let first = pool.spawn(|| sleep(2 * MS));
    let p = pool.clone();
    let waiter = spawn(move || p.spawn(|| "waited").join().unwrap());
    yield_now(); // in line for the slot
    first.join().unwrap(); // the slot goes to the waiter
    assert!(is_pool_full(&pool.try_spawn(|| "late").unwrap_err()));
    assert_eq!(waiter.join().unwrap(), "waited");
}

#[test]
fn try_spawn_in_a_group_never_fails_for_room() {
    let group = Group::new();
    let hs: Vec<_> = (0..100)
        .map(|i| group.try_spawn(move || i).unwrap())
        .collect();
    assert_eq!(group.len(), 100);
    let sum: i32 = hs.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(sum, 4950);
}

#[test]
fn try_add_fails_when_full_and_leaves_the_greenlet_out() {
    let pool = Pool::new(1);
    let a = spawn(|| sleep(2 * MS));
    let b = spawn(|| sleep(2 * MS));
    pool.try_add(a.greenlet()).unwrap();
    assert_eq!(pool.try_add(b.greenlet()), Err(PoolFull));
    assert_eq!(
        pool.try_add(a.greenlet()),
        Ok(()),
        "a member again: nothing to do"
    );
    assert!(pool.contains(a.greenlet()) && !pool.contains(b.greenlet()));
    pool.join().unwrap();
    assert!(a.is_finished());
    pool.try_add(b.greenlet()).unwrap();
    assert!(pool.contains(b.greenlet()) || b.is_finished());
    b.join().unwrap();
    pool.join().unwrap();
    assert_eq!(pool.free_count(), 1);
}

#[test]
fn try_new_refuses_a_size_of_zero() {
    assert_eq!(Pool::try_new(0).unwrap_err(), PoolSizeError);
    assert_eq!(
        PoolSizeError.to_string(),
        "a pool needs a size of at least 1"
    );
    assert_eq!(Pool::try_new(5).unwrap().size(), 5);
    let zero = std::panic::catch_unwind(|| Pool::new(0));
    assert!(zero.is_err(), "new documents a panic for 0");
}

#[test]
fn wait_available_returns_when_a_slot_frees() {
    let pool = Pool::new(2);
    pool.spawn(|| sleep(20 * MS));
    pool.spawn(|| sleep(5 * MS));
    assert!(pool.is_full());
    let t = Instant::now();
    assert_eq!(pool.wait_available(), Ok(1));
    let waited = t.elapsed();
    assert!(waited >= 5 * MS, "{waited:?}");
    assert!(waited < Duration::from_secs(5), "{waited:?}");
    assert_eq!(pool.len(), 1, "waiting took no slot");
    pool.join().unwrap();
    assert_eq!(pool.wait_available(), Ok(2), "free: at once");
}

#[test]
fn wait_available_timeout_gives_up_with_zero() {
    let pool = Pool::new(1);
    let h = pool.spawn(|| sleep(Duration::from_secs(5)));
    let t = Instant::now();
    assert_eq!(pool.wait_available_timeout(5 * MS), Ok(0));
    assert!(t.elapsed() >= 5 * MS);
    h.kill();
    assert_eq!(pool.wait_available_timeout(Duration::ZERO), Ok(1));
}

#[test]
fn wait_available_in_main_with_nothing_to_free_a_slot_is_an_error() {
    let pool = Pool::new(1);
    let g = green::Greenlet::new(|_: green::Value| ());
    pool.add(&g).unwrap(); // never started: nothing will free the slot
    assert!(pool.wait_available().is_err());
    pool.discard(&g);
    assert_eq!(pool.wait_available(), Ok(1));
}
