//! Killing: `JoinHandle::kill_with` (a chosen error), `killall` and `killall_nowait`,
//! `Group::kill`, `kill_timeout`, `kill_nowait`, and the group membership they act on
//! (`Group::add`, `discard`).

use std::cell::{Cell, RefCell};
use std::panic::catch_unwind;
use std::rc::Rc;
use std::time::{Duration, Instant};

use green::{Builder, GreenletExit, Group, Pool};

#[derive(Debug, PartialEq)]
struct Shutdown(u32);

/// Sets its flag when dropped.
struct Flag(Rc<Cell<bool>>);
impl Drop for Flag {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

fn sleeper() -> green::JoinHandle<()> {
    green::spawn(|| green::sleep(Duration::from_secs(60)))
}

#[test]
fn kill_with_unwinds_with_the_error_and_join_returns_it_as_the_payload() {
    let dropped = Rc::new(Cell::new(false));
    let d = dropped.clone();
    let h = green::spawn(move || {
        let _flag = Flag(d);
        green::sleep(Duration::from_secs(60));
    });
    green::yield_now();
    let t = Instant::now();
    h.kill_with(Shutdown(7));
    assert!(h.is_finished(), "kill_with waits for the death");
    assert!(dropped.get(), "destructors ran");
    assert!(t.elapsed() < Duration::from_secs(30));
    let err = h.join().unwrap_err();
    assert!(err.is_panic() && !err.is_killed());
    assert_eq!(err.into_panic().downcast_ref(), Some(&Shutdown(7)));
}

#[test]
fn kill_with_greenlet_exit_is_a_plain_kill() {
    let h = sleeper();
    green::yield_now();
    h.kill_with(GreenletExit);
    assert!(h.join().unwrap_err().is_killed());
}

#[test]
fn kill_with_before_the_start_never_runs_the_function() {
    let ran = Rc::new(Cell::new(false));
    let r = ran.clone();
    let h = green::spawn(move || r.set(true));
    h.kill_with(Shutdown(1));
    green::yield_now();
    assert!(!ran.get());
    let p = h.join().unwrap_err().into_panic();
    assert_eq!(p.downcast_ref(), Some(&Shutdown(1)));
}

#[test]
fn the_greenlet_sees_the_error_itself_and_may_catch_it() {
    let h = green::spawn(|| {
        let r = catch_unwind(|| green::sleep(Duration::from_secs(60)));
        match r.unwrap_err().downcast::<Shutdown>() {
            Ok(s) => s.0 + 1,
            Err(_) => 0,
        }
    });
    green::yield_now();
    h.kill_with(Shutdown(41));
    assert_eq!(h.join().unwrap(), 42);
}

#[test]
fn kill_with_on_a_finished_greenlet_changes_nothing() {
    let h = green::spawn(|| 3);
    h.wait().unwrap();
    h.kill_with(Shutdown(0));
    assert_eq!(h.join().unwrap(), 3);
}

#[test]
fn a_kill_with_is_counted_as_a_kill_while_its_destructor_switches() {
    // The destructor sleeps while the error unwinds the greenlet. A second kill that
    // arrives meanwhile is held (raised in the destructor, it would abort the process)
    // and dropped when the greenlet dies.
    struct SlowDrop(Rc<Cell<bool>>);
    impl Drop for SlowDrop {
        fn drop(&mut self) {
            green::sleep(Duration::from_millis(30));
            self.0.set(true);
        }
    }
    let finished = Rc::new(Cell::new(false));
    let f = finished.clone();
    let h = Rc::new(green::spawn(move || {
        let _slow = SlowDrop(f);
        green::sleep(Duration::from_secs(60));
    }));
    green::yield_now();
    let h2 = h.clone();
    let second = green::spawn(move || {
        green::sleep(Duration::from_millis(10));
        h2.kill(); // while the destructor sleeps
    });
    h.kill_with(Shutdown(9));
    second.join().unwrap();
    assert!(finished.get(), "the destructor ran to its end");
    let h = Rc::try_unwrap(h).unwrap();
    assert_eq!(
        h.join().unwrap_err().into_panic().downcast_ref(),
        Some(&Shutdown(9))
    );
}

#[test]
fn a_kill_with_of_a_greenlet_killing_itself_unwinds_it_with_the_error() {
    let slot: Rc<RefCell<Option<Rc<green::JoinHandle<()>>>>> = Rc::default();
    let s = slot.clone();
    let h = Rc::new(
        Builder::new()
            .build(move || {
                let me = s.borrow().clone().unwrap();
                me.kill_with(Shutdown(3));
                unreachable!("unwound by its own kill");
            })
            .unwrap(),
    );
    *slot.borrow_mut() = Some(h.clone());
    h.start();
    h.wait().unwrap();
    slot.borrow_mut().take();
    let h = Rc::try_unwrap(h).unwrap();
    assert_eq!(
        h.join().unwrap_err().into_panic().downcast_ref(),
        Some(&Shutdown(3))
    );
}

#[test]
fn killall_kills_every_greenlet_and_waits() {
    let hs: Vec<_> = (0..5).map(|_| sleeper()).collect();
    green::yield_now();
    let t = Instant::now();
    assert!(green::killall(&hs, None));
    assert!(t.elapsed() < Duration::from_secs(30));
    assert!(hs.iter().all(|h| h.is_finished()));
    for h in hs {
        assert!(h.join().unwrap_err().is_killed());
    }
}

#[test]
fn killall_with_a_timeout_reports_those_still_dying() {
    struct SlowDrop;
    impl Drop for SlowDrop {
        fn drop(&mut self) {
            green::sleep(Duration::from_millis(200));
        }
    }
    let slow = green::spawn(|| {
        let _s = SlowDrop;
        green::sleep(Duration::from_secs(60));
    });
    let quick = sleeper();
    let hs = [slow, quick];
    green::yield_now();
    assert!(!green::killall(&hs, Some(Duration::from_millis(10))));
    assert!(hs[1].is_finished() && !hs[0].is_finished());
    assert!(green::killall(&hs, Some(Duration::from_secs(30))));
    assert!(hs[0].is_finished());
}

#[test]
fn killall_nowait_returns_at_once() {
    let hs: Vec<_> = (0..3).map(|_| sleeper()).collect();
    green::yield_now();
    green::killall_nowait(&hs);
    assert!(hs.iter().all(|h| !h.is_finished()), "not waited for");
    for h in hs {
        assert!(h.join().unwrap_err().is_killed());
    }
}

#[test]
fn killall_from_one_of_the_greenlets_spares_the_caller() {
    let all: Rc<RefCell<Vec<green::JoinHandle<u32>>>> = Rc::default();
    let a = all.clone();
    let killer = Builder::new()
        .build(move || {
            let hs = a.borrow();
            green::killall(&hs, None);
            hs.iter().filter(|h| h.is_finished()).count() as u32
        })
        .unwrap();
    let killer_g = killer.greenlet().clone();
    all.borrow_mut().push(killer);
    for _ in 0..3 {
        all.borrow_mut().push(green::spawn(|| {
            green::sleep(Duration::from_secs(60));
            0
        }));
    }
    green::yield_now();
    all.borrow()[0].start();
    while !killer_g.dead() {
        green::yield_now();
    }
    let hs = std::mem::take(&mut *all.borrow_mut());
    let mut hs = hs.into_iter();
    assert_eq!(
        hs.next().unwrap().join().unwrap(),
        3,
        "the three others died"
    );
    assert!(hs.all(|h| h.join().unwrap_err().is_killed()));
}

#[test]
fn group_kill_timeout_and_kill_nowait() {
    let group = Group::new();
    let hs: Vec<_> = (0..3)
        .map(|_| group.spawn(|| green::sleep(Duration::from_secs(60))))
        .collect();
    green::yield_now();
    group.kill_nowait();
    assert_eq!(group.len(), 3, "kill_nowait does not wait");
    group.join().unwrap();
    assert!(hs.iter().all(|h| h.is_finished()));

    struct SlowDrop;
    impl Drop for SlowDrop {
        fn drop(&mut self) {
            green::sleep(Duration::from_millis(200));
        }
    }
    let slow = group.spawn(|| {
        let _s = SlowDrop;
        green::sleep(Duration::from_secs(60));
    });
    green::yield_now();
    assert!(!group.kill_timeout(Duration::from_millis(10)));
    assert_eq!(group.len(), 1);
    assert!(group.kill_timeout(Duration::from_secs(30)));
    assert!(group.is_empty() && slow.is_finished());
}

#[test]
fn group_add_tracks_a_greenlet_started_elsewhere() {
    let group = Group::new();
    let h = Builder::new().build(|| 5).unwrap();
    group.add(h.greenlet()).unwrap();
    group.add(h.greenlet()).unwrap(); // a member already: nothing more
    assert_eq!(group.len(), 1);
    h.start();
    group.join().unwrap();
    assert!(group.is_empty() && h.is_finished());
    // A finished greenlet is not added.
    group.add(h.greenlet()).unwrap();
    assert!(group.is_empty());
    assert_eq!(h.join().unwrap(), 5);
}

#[test]
fn group_kill_covers_added_greenlets() {
    let group = Group::new();
    let h = sleeper();
    group.add(h.greenlet()).unwrap();
    green::yield_now();
    group.kill();
    assert!(h.join().unwrap_err().is_killed());
    assert!(group.is_empty());
}

#[test]
fn discard_leaves_the_greenlet_running_and_frees_its_slot_once() {
    let pool = Pool::new(1);
    let h = pool.spawn(|| {
        green::sleep(Duration::from_millis(20));
        1
    });
    assert!(pool.is_full());
    assert!(pool.discard(h.greenlet()));
    assert!(!pool.discard(h.greenlet()), "not a member any more");
    assert_eq!(pool.free_count(), 1);
    assert!(pool.is_empty());
    let t = Instant::now();
    pool.join().unwrap();
    assert!(
        t.elapsed() < Duration::from_millis(15),
        "join does not wait for it"
    );
    assert_eq!(h.join().unwrap(), 1);
    // Its death did not give the slot back a second time.
    assert_eq!(pool.free_count(), 1);
}

#[test]
fn add_to_a_full_pool_waits_for_a_slot() {
    let pool = Pool::new(1);
    let first = pool.spawn(|| green::sleep(Duration::from_millis(20)));
    let second = Builder::new().build(|| ()).unwrap();
    let t = Instant::now();
    pool.add(second.greenlet()).unwrap();
    assert!(
        first.is_finished(),
        "the slot came free when the first one ended"
    );
    assert!(t.elapsed() >= Duration::from_millis(15));
    assert!(pool.contains(second.greenlet()) && pool.is_full());
    second.start();
    second.join().unwrap();
    pool.join().unwrap();
    assert_eq!(pool.free_count(), 1);
}

#[test]
fn add_that_cannot_wait_is_an_error() {
    let pool = Pool::new(1);
    let stuck = pool.spawn(|| {
        let _ = green::park::park(None);
    });
    green::yield_now();
    let other = Builder::new().build(|| ()).unwrap();
    assert_eq!(
        pool.add(other.greenlet()),
        Err(green::BlockError::WouldBlockForever)
    );
    assert!(!pool.contains(other.greenlet()));
    stuck.kill();
    assert!(pool.is_empty());
    pool.add(other.greenlet()).unwrap();
    assert!(pool.contains(other.greenlet()));
    other.start();
    other.join().unwrap();
}
