//! The gevent layer: spawn, join, joinall, sleep, yield_now, kill, the block-forever
//! error, panic isolation and stack reuse (ported from gevent's test_greenlet.py and
//! test__joinall.py behaviours).

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use green::{JoinError, Value};

#[test]
fn spawn_does_not_run_until_the_caller_blocks() {
    let ran = Rc::new(Cell::new(0));
    let r = ran.clone();
    let h = green::spawn(move || r.set(r.get() + 1));
    assert_eq!(ran.get(), 0);
    assert!(!h.is_finished());
    green::yield_now();
    assert_eq!(ran.get(), 1);
    assert!(h.is_finished());
}

#[test]
fn yield_now_interleaves_1a_2a_1b_2b() {
    let out = Rc::new(RefCell::new(Vec::new()));
    let hs: Vec<_> = [1, 2]
        .into_iter()
        .map(|n| {
            let out = out.clone();
            green::spawn(move || {
                out.borrow_mut().push(format!("{n}A"));
                green::yield_now();
                out.borrow_mut().push(format!("{n}B"));
            })
        })
        .collect();
    green::joinall(hs);
    assert_eq!(*out.borrow(), ["1A", "2A", "1B", "2B"]);
}

#[test]
fn sleeps_overlap_and_wake_in_deadline_order() {
    let order = Rc::new(RefCell::new(Vec::new()));
    let t0 = Instant::now();
    let hs: Vec<_> = [30u64, 10, 20]
        .into_iter()
        .map(|ms| {
            let order = order.clone();
            green::spawn(move || {
                green::sleep(Duration::from_millis(ms));
                order.borrow_mut().push(ms);
                ms
            })
        })
        .collect();
    let vals: Vec<u64> = green::joinall(hs).into_iter().map(Result::unwrap).collect();
    assert_eq!(vals, [30, 10, 20], "joinall keeps input order");
    assert_eq!(*order.borrow(), [10, 20, 30], "they woke in deadline order");
    let el = t0.elapsed();
    assert!(el >= Duration::from_millis(30), "{el:?}");
    assert!(
        el < Duration::from_millis(55 + 200),
        "slept concurrently: {el:?}"
    );
}

#[test]
fn join_returns_the_value_and_value_reads_it_after_completion() {
    let h = green::spawn(|| String::from("done"));
    assert_eq!(h.value(), None);
    h.wait().unwrap();
    assert_eq!(h.value().as_deref(), Some("done"));
    assert!(h.is_successful());
    assert_eq!(h.join().unwrap(), "done");
}

#[test]
fn results_of_every_kind_come_back_typed() {
    // Kept in the greenlet's record as a `Value`: inline, boxed, unit, and `Value` itself
    // (which `Value::new` does not wrap again).
    assert_eq!(green::spawn(|| 7u64).join().unwrap(), 7);
    assert_eq!(green::spawn(|| ()).join().unwrap(), ());
    assert_eq!(green::spawn(|| vec![1u8; 1000]).join().unwrap().len(), 1000);
    let h = green::spawn(|| Value::new(5i32));
    assert_eq!(h.join().unwrap().get::<i32>(), Ok(5));
    let h = green::spawn(|| Rc::new(5i32)); // not `Send`, not inline
    h.wait().unwrap();
    assert_eq!(h.value().as_deref(), Some(&5));
    let h = green::spawn(Value::none);
    assert!(h.join().unwrap().is_none());
    // A function that returns `GreenletExit` as a value was not killed.
    let h = green::spawn(|| green::GreenletExit);
    assert!(h.join().is_ok());
    // Links see the typed value, a panic, a kill.
    let seen = Rc::new(RefCell::new(Vec::new()));
    let (s1, s2, s3) = (seen.clone(), seen.clone(), seen.clone());
    let ok = green::spawn(|| Value::new("v"));
    ok.link(move |r| s1.borrow_mut().push(format!("{}", r.unwrap())));
    let bad = green::spawn(|| -> u8 { panic!("p") });
    bad.link(move |r| {
        s2.borrow_mut()
            .push(format!("{:?}", r.unwrap_err().panic_message()))
    });
    let killed = green::spawn(|| green::sleep(Duration::from_secs(30)));
    killed.link(move |r| {
        s3.borrow_mut()
            .push(format!("{}", r.unwrap_err().is_killed()))
    });
    green::yield_now();
    killed.kill();
    let _ = (ok.join(), bad.join(), killed.join());
    assert_eq!(*seen.borrow(), ["v", "Some(\"p\")", "true"]);
}

#[test]
fn join_timeout_times_out_then_succeeds() {
    let h = green::spawn(|| {
        green::sleep(Duration::from_millis(40));
        7
    });
    let e = h.join_timeout(Duration::from_millis(1)).unwrap_err();
    assert!(e.is_timeout(), "{e:?}");
    assert!(!h.is_finished());
    assert_eq!(h.join_timeout(Duration::from_secs(10)).unwrap(), 7);
    assert!(matches!(h.join(), Err(JoinError::Taken)));
}

#[test]
fn joinall_timeout_and_try_joinall() {
    let hs = vec![
        green::spawn(|| green::sleep(Duration::from_millis(1))),
        green::spawn(|| green::sleep(Duration::from_secs(30))),
    ];
    assert!(!green::joinall_timeout(&hs, Duration::from_millis(30)));
    assert!(hs[0].is_finished());
    assert!(!hs[1].is_finished());
    hs[1].kill();
    assert!(green::joinall_timeout(&hs, Duration::from_millis(1)));

    let t0 = Instant::now();
    let slow = green::spawn(|| {
        green::sleep(Duration::from_secs(30));
        0
    });
    let bad = green::spawn(|| -> i32 { panic!("first error") });
    let e = green::try_joinall(vec![slow, bad]).unwrap_err();
    assert_eq!(e.panic_message(), Some("first error"));
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "returned at the first error"
    );
}

#[test]
fn panic_is_isolated_and_reported_by_join() {
    let bad = green::spawn(|| -> u8 { panic!("boom") });
    let good = green::spawn(|| 1u8);
    let e = bad.join().unwrap_err();
    assert!(e.is_panic());
    assert_eq!(e.panic_message(), Some("boom"));
    assert_eq!(good.join().unwrap(), 1, "the hub survived the panic");
    // And the hub keeps scheduling.
    green::sleep(Duration::from_millis(1));
}

#[test]
fn kill_before_start_while_sleeping_and_after_finish() {
    // Before start: never runs.
    let ran = Rc::new(Cell::new(false));
    let r = ran.clone();
    let h = green::spawn(move || r.set(true));
    h.kill();
    assert!(h.is_finished());
    assert!(!ran.get());
    assert!(h.join().unwrap_err().is_killed());

    // While sleeping: destructors run, join says killed.
    struct Flag(Rc<Cell<bool>>);
    impl Drop for Flag {
        fn drop(&mut self) {
            self.0.set(true);
        }
    }
    let dropped = Rc::new(Cell::new(false));
    let d = dropped.clone();
    let h = green::spawn(move || {
        let _f = Flag(d);
        green::sleep(Duration::from_secs(60));
    });
    green::yield_now();
    assert!(!h.is_finished());
    let t0 = Instant::now();
    h.kill();
    assert!(t0.elapsed() < Duration::from_secs(5));
    assert!(dropped.get());
    assert!(h.join().unwrap_err().is_killed());

    // After finish: nothing happens, the value stays.
    let h = green::spawn(|| 3);
    h.wait().unwrap();
    h.kill();
    assert_eq!(h.join().unwrap(), 3);
}

#[test]
fn blocking_forever_is_an_error_not_a_hang() {
    let stuck = green::spawn(|| {
        let _ = green::park::park(None);
    });
    let e = stuck.join().unwrap_err();
    assert!(e.is_would_block_forever(), "{e:?}");
    assert!(e.to_string().contains("block forever"));
    // park in main with nothing to do:
    assert_eq!(
        green::park::park(None),
        Err(green::BlockError::WouldBlockForever)
    );
}

#[test]
fn join_self_is_an_error() {
    let slot: Rc<RefCell<Option<green::JoinHandle<()>>>> = Rc::default();
    let got = Rc::new(Cell::new(false));
    let (s, g) = (slot.clone(), got.clone());
    let h = green::spawn(move || {
        let me = s.borrow_mut().take().unwrap();
        g.set(matches!(me.join(), Err(JoinError::JoinSelf)));
    });
    let watched = h.greenlet().clone();
    *slot.borrow_mut() = Some(h);
    while !watched.dead() {
        green::yield_now();
    }
    assert!(got.get());
}

#[test]
fn spawn_later_starts_after_the_delay() {
    let t0 = Instant::now();
    let h = green::spawn_later(Duration::from_millis(20), move || t0.elapsed());
    let started_after = h.join().unwrap();
    assert!(
        started_after >= Duration::from_millis(20),
        "{started_after:?}"
    );
}

#[test]
fn stacks_are_reused() {
    // Warm the pool, then many sequential spawn+join cycles allocate nothing new.
    green::spawn(|| ()).join().unwrap();
    let before = green::stack::pool_stats();
    for _ in 0..1000 {
        green::spawn(|| ()).join().unwrap();
    }
    let after = green::stack::pool_stats();
    assert_eq!(before.allocated, after.allocated, "{before:?} -> {after:?}");
    assert_eq!(after.in_use, 0);
}

#[test]
fn many_greenlets_run_concurrently() {
    let n = 10_000;
    let done = Rc::new(Cell::new(0));
    let hs: Vec<_> = (0..n)
        .map(|i| {
            let done = done.clone();
            green::spawn(move || {
                green::sleep(Duration::from_millis(5));
                done.set(done.get() + 1);
                i
            })
        })
        .collect();
    let sum: usize = green::joinall(hs).into_iter().map(Result::unwrap).sum();
    assert_eq!(done.get(), n);
    assert_eq!(sum, n * (n - 1) / 2);
}

#[test]
fn builder_names_and_try_spawn_errors_cleanly() {
    let h = green::Builder::new()
        .name("named")
        .spawn(|| green::getcurrent().name().map(str::to_owned))
        .unwrap();
    assert_eq!(h.join().unwrap().as_deref(), Some("named"));
    // An absurd stack size is a clean error, not an abort.
    let e = green::Builder::new()
        .stack_size(usize::MAX / 2)
        .spawn(|| ())
        .unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::OutOfMemory, "{e}");
}

#[test]
fn links_run_in_order_also_after_completion() {
    let seen = Rc::new(RefCell::new(Vec::new()));
    let h = green::spawn(|| 4);
    for tag in ["a", "b"] {
        let s = seen.clone();
        h.link(move |r| s.borrow_mut().push(format!("{tag}{}", r.unwrap())));
    }
    h.wait().unwrap();
    let s = seen.clone();
    h.link(move |r| s.borrow_mut().push(format!("late{}", r.unwrap())));
    assert_eq!(*seen.borrow(), ["a4", "b4", "late4"]);
}

#[test]
fn run_blocking_does_not_stall_other_greenlets() {
    let ticks = Rc::new(Cell::new(0));
    let t = ticks.clone();
    let ticker = green::spawn(move || {
        for _ in 0..5 {
            green::sleep(Duration::from_millis(5));
            t.set(t.get() + 1);
        }
    });
    let v = green::run_blocking(|| {
        std::thread::sleep(Duration::from_millis(100));
        "blocking done"
    });
    assert_eq!(v, "blocking done");
    assert_eq!(
        ticks.get(),
        5,
        "the ticker ran while the helper thread blocked"
    );
    ticker.join().unwrap();
}

#[test]
fn hub_per_thread() {
    let t = std::thread::spawn(|| {
        let h = green::spawn(|| green::getcurrent().id());
        h.join().unwrap()
    });
    let other = t.join().unwrap();
    let here = green::spawn(|| green::getcurrent().id()).join().unwrap();
    assert_ne!(other, here);
}

#[test]
fn switch_value_into_spawned_greenlet_parent_is_hub() {
    let h = green::spawn(|| green::getcurrent().parent().map(|p| p.is_hub()));
    assert_eq!(h.join().unwrap(), Some(true));
    let _ = Value::none();
}

#[test]
fn run_blocking_always_lets_ready_greenlets_run() {
    for _ in 0..50 {
        let ran = Rc::new(Cell::new(false));
        let r = ran.clone();
        let other = green::spawn(move || r.set(true));
        // Even an instant job parks the caller once.
        assert_eq!(green::run_blocking(|| 1 + 1), 2);
        assert!(ran.get());
        other.join().unwrap();
    }
}

#[test]
fn run_blocking_panics_resume_in_the_caller() {
    let r = std::panic::catch_unwind(|| green::run_blocking(|| -> u8 { panic!("in helper") }));
    let p = r.unwrap_err();
    assert_eq!(p.downcast_ref::<&str>(), Some(&"in helper"));
}

#[test]
fn a_greenlet_spinning_on_yield_now_can_be_killed() {
    let spins = Rc::new(Cell::new(0u64));
    let s = spins.clone();
    let h = green::spawn(move || {
        loop {
            s.set(s.get() + 1);
            green::yield_now();
        }
    });
    for _ in 0..10 {
        green::yield_now(); // main yields too: each round the spinner runs once
    }
    assert_eq!(spins.get(), 10);
    h.kill();
    assert!(h.join().unwrap_err().is_killed());
    assert_eq!(
        spins.get(),
        10,
        "the kill arrived at the spinner's next resume"
    );
}

#[test]
fn yield_now_after_unparking_oneself_keeps_one_queue_place_and_ends_the_park() {
    let order = Rc::new(RefCell::new(Vec::new()));
    let (o1, o2) = (order.clone(), order.clone());
    let a = green::spawn(move || {
        let u = green::park::unparker();
        assert!(u.unpark()); // queued now, with a wake
        o1.borrow_mut().push("a1");
        green::yield_now(); // already queued: runs after b, once
        o1.borrow_mut().push("a2");
        assert!(
            !u.is_current_park(),
            "the yield ended the park it was made for"
        );
        assert!(!u.unpark());
    });
    let b = green::spawn(move || {
        o2.borrow_mut().push("b1");
        green::yield_now();
        o2.borrow_mut().push("b2");
    });
    green::joinall([a, b]);
    assert_eq!(*order.borrow(), ["a1", "b1", "a2", "b2"]);
}

#[test]
fn a_detached_results_panicking_drop_is_logged_not_raised_in_whoever_runs_next() {
    // The result of a detached greenlet is dropped with its record, in the hub, right
    // after it ran: a panic there must not come out of the caller's unrelated `sleep`.
    struct PanicOnDrop;
    impl Drop for PanicOnDrop {
        fn drop(&mut self) {
            panic!("drop of a detached result");
        }
    }
    drop(green::spawn(|| PanicOnDrop));
    let r = std::panic::catch_unwind(|| green::sleep(Duration::from_millis(5)));
    assert!(r.is_ok(), "the result's drop panicked out of sleep()");
    assert_eq!(green::spawn(|| 5).join().unwrap(), 5, "the hub still works");
}

#[test]
fn a_join_resumes_after_greenlets_that_were_ready_before_the_joined_one_died() {
    // The joined greenlet's death wakes the joiner; when something else is ready by
    // then, the joiner waits its turn behind it (FIFO), as gevent's hub runs callbacks.
    let log = Rc::new(RefCell::new(Vec::new()));
    let (l1, l2) = (log.clone(), log.clone());
    let g = green::spawn(move || l1.borrow_mut().push("g"));
    let _x = green::spawn(move || l2.borrow_mut().push("x"));
    g.join().unwrap();
    log.borrow_mut().push("main");
    assert_eq!(*log.borrow(), ["g", "x", "main"]);

    // Nothing else ready: the joiner resumes right after the death.
    let l3 = log.clone();
    log.borrow_mut().clear();
    green::spawn(move || l3.borrow_mut().push("h"))
        .join()
        .unwrap();
    log.borrow_mut().push("main");
    assert_eq!(*log.borrow(), ["h", "main"]);
}

#[test]
fn timers_fire_during_a_loop_of_spawn_and_join_that_never_waits() {
    // Each join hands the CPU to the joined greenlet and back without the hub ever being
    // idle: timers and IO are still polled every few scheduling ticks.
    let fired = Rc::new(Cell::new(false));
    let f = fired.clone();
    let _sleeper = green::spawn(move || {
        green::sleep(Duration::from_millis(1));
        f.set(true);
    });
    green::yield_now(); // the sleeper arms its timer
    let start = Instant::now();
    let mut joins = 0u64;
    while !fired.get() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the timer never fired in {joins} joins"
        );
        green::spawn(|| ()).join().unwrap();
        joins += 1;
    }
}

/// A destructor that switches (sleeps) while its greenlet unwinds from a kill.
struct SleepyCleanup(Rc<Cell<bool>>);
impl Drop for SleepyCleanup {
    fn drop(&mut self) {
        green::sleep(Duration::from_millis(2));
        self.0.set(true);
    }
}

/// A greenlet sleeping 10 s under a `SleepyCleanup`, started; and whether its
/// destructor finished.
fn sleeper_with_sleepy_cleanup() -> (green::JoinHandle<()>, Rc<Cell<bool>>) {
    let cleaned = Rc::new(Cell::new(false));
    let c = cleaned.clone();
    let h = green::spawn(move || {
        let _c = SleepyCleanup(c);
        green::sleep(Duration::from_secs(10));
    });
    green::yield_now();
    (h, cleaned)
}

#[test]
fn two_kills_queued_at_once_are_one_kill() {
    let (h, cleaned) = sleeper_with_sleepy_cleanup();
    h.kill_nowait();
    h.kill_nowait();
    // A second kill raised in the destructor's sleep would abort the process.
    assert!(h.join().unwrap_err().is_killed());
    assert!(cleaned.get(), "the destructor finished");
}

#[test]
fn a_kill_and_a_timeout_due_at_once_do_not_interrupt_the_kills_destructor() {
    // The kill is raised first; the greenlet's own timeout, due in the same batch, is
    // deferred, and must not be raised in the destructor's sleep while the kill unwinds.
    let cleaned = Rc::new(Cell::new(false));
    let c = cleaned.clone();
    let d = Instant::now() + Duration::from_millis(20);
    let target: Rc<Cell<Option<green::Greenlet>>> = Rc::new(Cell::new(None));
    let t2 = target.clone();
    green::timer::call_at(d, move || {
        if let Some(g) = t2.take() {
            green::throw_into(&g, Box::new(green::GreenletExit));
        }
    });
    let h = green::spawn(move || {
        let _ = green::with_deadline(d, || {
            let _c = SleepyCleanup(c);
            green::sleep(Duration::from_secs(10));
        });
    });
    green::yield_now();
    target.set(Some(h.greenlet().clone()));
    let t = Instant::now();
    while t.elapsed() < Duration::from_millis(60) {
        std::hint::spin_loop();
    }
    assert!(h.join().unwrap_err().is_killed());
    assert!(cleaned.get());
}

#[test]
fn a_timeout_inside_a_destructor_run_by_a_kill_still_fires() {
    struct BoundedCleanup(Rc<Cell<Option<Duration>>>);
    impl Drop for BoundedCleanup {
        fn drop(&mut self) {
            let t = Instant::now();
            let r = green::with_timeout(Duration::from_millis(20), || {
                green::sleep(Duration::from_secs(3))
            });
            assert!(r.is_err());
            self.0.set(Some(t.elapsed()));
        }
    }
    let took = Rc::new(Cell::new(None));
    let t2 = took.clone();
    let h = green::spawn(move || {
        let _c = BoundedCleanup(t2);
        green::sleep(Duration::from_secs(10));
    });
    green::yield_now();
    h.kill();
    let took = took.get().expect("the destructor ran");
    assert!(took < Duration::from_secs(1), "{took:?}");
}

#[test]
fn killing_an_unstarted_spawn_later_greenlet_disarms_its_start() {
    let h = green::spawn_later(Duration::from_secs(30), || 1);
    h.kill();
    // Nothing can wake this waiter: with the start timer still armed the hub would wait
    // for it (30 s) instead of reporting that nothing can ever wake.
    let ev = green::Event::new();
    let e = ev.clone();
    let w = green::spawn(move || {
        let _ = e.wait();
    });
    let t = Instant::now();
    let r = w.join();
    assert!(
        matches!(
            r,
            Err(JoinError::Blocked(green::BlockError::WouldBlockForever))
        ),
        "{r:?}"
    );
    assert!(t.elapsed() < Duration::from_secs(5));
}

#[test]
fn joining_inside_a_link_callback_is_an_error_not_a_panic() {
    let slot: Rc<RefCell<Option<green::JoinHandle<String>>>> = Rc::default();
    let seen = Rc::new(RefCell::new(Vec::new()));
    let h = green::spawn(|| "result".to_string());
    let (s, sn) = (slot.clone(), seen.clone());
    h.link(move |r| {
        sn.borrow_mut()
            .push(format!("{:?}", r.map_err(|e| e.to_string())));
        let h = s.borrow();
        let inner = h.as_ref().unwrap().try_take();
        let in_hub = matches!(
            inner,
            Some(Err(JoinError::Blocked(green::BlockError::InHub)))
        );
        sn.borrow_mut().push(format!("in hub: {in_hub}"));
    });
    *slot.borrow_mut() = Some(h);
    green::yield_now();
    green::yield_now();
    let seen = seen.borrow().clone();
    assert_eq!(seen, ["Ok(\"result\")", "in hub: true"]);
    // After the callbacks, the result is still there to join.
    let h = slot.borrow_mut().take().unwrap();
    assert_eq!(h.join().unwrap(), "result");
}

#[test]
fn a_throw_into_an_unstarted_greenlet_is_its_outcome() {
    let h = green::spawn(|| 1);
    green::throw_into(h.greenlet(), Box::new("boom"));
    match h.join() {
        Err(JoinError::Panicked(p)) => assert_eq!(*p.downcast::<&str>().unwrap(), "boom"),
        r => panic!("{r:?}"),
    }
    let h = green::spawn(|| 1);
    green::throw_into(h.greenlet(), Box::new(green::GreenletExit));
    assert!(h.join().unwrap_err().is_killed());
}

#[test]
fn a_spawn_later_greenlet_started_early_is_not_woken_by_its_start() {
    let h = green::spawn_later(Duration::from_millis(20), || {
        green::park::park(Some(Instant::now() + Duration::from_millis(150))).unwrap()
    });
    // Started early by an explicit switch from another greenlet: it parks at once.
    let g = h.greenlet().clone();
    let _starter = green::spawn(move || {
        g.switch(());
    });
    assert_eq!(h.join().unwrap(), green::park::Wake::TimedOut);
}

#[test]
fn a_spawn_later_greenlet_started_early_disarms_its_start() {
    let h = green::spawn_later(Duration::from_secs(30), || 1);
    let g = h.greenlet().clone();
    // Started early by an explicit switch (the starter is left suspended in it: `h`'s
    // parent is the hub).
    let _starter = green::spawn(move || {
        g.switch(());
    });
    assert_eq!(h.join().unwrap(), 1);
    // Nothing is armed now: a wait for nothing reports it at once, instead of after the
    // start timer's 30 s.
    let t = Instant::now();
    let ev = green::Event::new();
    let e = ev.clone();
    let r = green::spawn(move || e.wait()).join();
    assert!(
        matches!(
            r,
            Err(JoinError::Blocked(green::BlockError::WouldBlockForever))
        ),
        "{r:?}"
    );
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
}

/// Sleeps `ms` in its destructor, then sets its flag.
struct SleepsOnDrop(u64, Rc<Cell<bool>>);
impl Drop for SleepsOnDrop {
    fn drop(&mut self) {
        green::sleep(Duration::from_millis(self.0));
        self.1.set(true);
    }
}

#[test]
fn a_kill_sent_while_a_timeouts_destructor_sleeps_is_held_until_the_timeout_is_caught() {
    let cleaned = Rc::new(Cell::new(false));
    let c = cleaned.clone();
    let timed_out = Rc::new(Cell::new(false));
    let t = timed_out.clone();
    let h = green::spawn(move || {
        let r = green::with_timeout(Duration::from_millis(10), || {
            let _d = SleepsOnDrop(60, c);
            green::sleep(Duration::from_secs(10));
        });
        t.set(r.is_err());
        // The kill held meanwhile is raised at the next switch point.
        green::sleep(Duration::from_secs(10));
    });
    green::sleep(Duration::from_millis(30)); // its timeout fired; its destructor sleeps
    // Raised in that destructor's sleep, the kill would abort the process.
    h.kill();
    assert!(h.join().unwrap_err().is_killed());
    assert!(cleaned.get() && timed_out.get());
}

#[test]
fn an_outer_timeout_due_while_an_inner_ones_destructor_sleeps_is_raised_after_it() {
    let cleaned = Rc::new(Cell::new(false));
    let c = cleaned.clone();
    let h = green::spawn(move || {
        let mut inner_timed_out = false;
        let outer = green::with_timeout(Duration::from_millis(40), || {
            let inner = green::with_timeout(Duration::from_millis(10), || {
                let _d = SleepsOnDrop(80, c);
                green::sleep(Duration::from_secs(10));
            });
            inner_timed_out = inner.is_err();
            green::sleep(Duration::from_secs(10));
        });
        (inner_timed_out, outer.is_err())
    });
    let t = Instant::now();
    assert_eq!(h.join().unwrap(), (true, true));
    assert!(cleaned.get());
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
}

#[test]
fn a_second_raw_throw_into_a_switching_destructor_is_held() {
    struct SwitchesOnDrop(green::Greenlet, Rc<Cell<bool>>);
    impl Drop for SwitchesOnDrop {
        fn drop(&mut self) {
            self.0.switch(());
            self.1.set(true);
        }
    }
    let done = Rc::new(Cell::new(false));
    let d = done.clone();
    let main = green::getcurrent();
    let g = green::Greenlet::new(move |_: Value| {
        let _d = SwitchesOnDrop(main.clone(), d);
        main.switch(());
    });
    g.switch(());
    g.throw(); // unwinds it; its destructor switches back here
    assert!(!g.dead());
    // Raised in the destructor, this would abort the process: it is held, the
    // destructor's switch returns, and the first throw finishes the greenlet.
    g.throw();
    assert!(g.dead() && done.get());
}

#[test]
fn a_kill_of_main_while_its_timeouts_destructor_sleeps_comes_at_its_next_switch() {
    struct Sleepy;
    impl Drop for Sleepy {
        fn drop(&mut self) {
            green::sleep(Duration::from_millis(40));
        }
    }
    let main = green::getcurrent();
    let _killer = green::spawn(move || {
        green::sleep(Duration::from_millis(20));
        green::throw_into(&main, Box::new(green::GreenletExit));
    });
    let r = green::with_timeout(Duration::from_millis(5), || {
        let _s = Sleepy;
        green::sleep(Duration::from_secs(10));
    });
    assert!(r.is_err(), "main's timeout is caught by its scope");
    let next = std::panic::catch_unwind(|| green::sleep(Duration::from_secs(10)));
    let p = next.expect_err("the held kill comes at main's next switch point");
    assert!(p.is::<green::GreenletExit>());
}

#[test]
fn a_kill_sent_while_a_killed_greenlets_destructor_sleeps_is_not_raised_there() {
    let (h, cleaned) = sleeper_with_sleepy_cleanup();
    h.kill_nowait();
    green::yield_now(); // the kill unwinds it: its destructor sleeps
    h.kill_nowait(); // raised in the destructor, this would abort the process
    assert!(h.join().unwrap_err().is_killed());
    assert!(cleaned.get());
}

#[test]
fn a_greenlet_that_caught_a_kill_can_be_killed_again_while_another_unwinds() {
    let ev = green::Event::new();
    let e = ev.clone();
    let b = green::spawn(move || {
        // Ignores the first kill, as gevent code may (`except GreenletExit`).
        let first = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            green::sleep(Duration::from_secs(10))
        }));
        assert!(first.is_err());
        let _ = e.wait(); // never set
    });
    let cleaned = Rc::new(Cell::new(false));
    let c = cleaned.clone();
    let a = green::spawn(move || {
        let _c = SleepyCleanup(c);
        green::sleep(Duration::from_secs(10));
    });
    green::yield_now();
    b.kill_nowait();
    green::yield_now(); // B catches it and waits on the event
    a.kill_nowait();
    green::yield_now(); // A unwinds, its destructor sleeps
    b.kill_nowait(); // while A is mid-unwind: B must still die
    let _ = a.join();
    let t = Instant::now();
    assert!(b.join().unwrap_err().is_killed());
    assert!(t.elapsed() < Duration::from_secs(5));
}

/// A greenlet whose destructor sleeps `ms` while a kill unwinds it, killed now: it is
/// mid-unwind when this returns.
fn unwinding_for(ms: u64) -> green::JoinHandle<()> {
    let a = green::spawn(move || {
        let _c = SleepsOnDrop(ms, Rc::new(Cell::new(false)));
        green::sleep(Duration::from_secs(10));
    });
    green::yield_now();
    a.kill_nowait();
    green::yield_now(); // A unwinds; its destructor sleeps
    a
}

#[test]
fn a_kill_held_for_a_greenlet_that_caught_one_comes_when_the_other_unwinding_ends() {
    let b = green::spawn(|| {
        let first = std::panic::catch_unwind(|| green::sleep(Duration::from_secs(10)));
        assert!(first.is_err());
        // Caught while A unwinds: the runtime cannot tell it from unwinding yet.
        green::sleep(Duration::from_secs(10));
    });
    green::yield_now();
    let a = unwinding_for(100);
    b.kill_nowait(); // B catches it
    green::yield_now();
    let t = Instant::now();
    b.kill_nowait(); // held while A unwinds, then delivered to the parked B
    assert!(b.join().unwrap_err().is_killed());
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    assert!(a.join().unwrap_err().is_killed());
}

#[test]
fn a_timeout_held_for_a_greenlet_that_caught_a_kill_is_not_lost() {
    let b = green::spawn(|| {
        let guard = green::Timeout::start(Duration::from_millis(30));
        let first = std::panic::catch_unwind(|| green::sleep(Duration::from_secs(10)));
        assert!(first.is_err());
        // Parked when its timeout fires while A still unwinds: it comes when A is done.
        let r = green::Timeout::catch(|| green::sleep(Duration::from_secs(10)));
        r.is_err_and(|t| guard.is(&t))
    });
    green::yield_now();
    let a = unwinding_for(100);
    b.kill_nowait(); // B catches it
    let t = Instant::now();
    assert!(b.join().unwrap(), "B's own timeout interrupted its sleep");
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    assert!(a.join().unwrap_err().is_killed());
}

#[test]
fn nested_timeouts_inside_a_kills_destructor_both_fire() {
    let got = Rc::new(RefCell::new(Vec::new()));
    struct Cleanup(Rc<RefCell<Vec<bool>>>);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let outer = green::with_timeout(Duration::from_millis(30), || {
                let inner = green::with_timeout(Duration::from_millis(10), || {
                    let _d = SleepsOnDrop(60, Rc::new(Cell::new(false)));
                    green::sleep(Duration::from_secs(10));
                });
                self.0.borrow_mut().push(inner.is_err());
                green::sleep(Duration::from_secs(10));
            });
            self.0.borrow_mut().push(outer.is_err());
        }
    }
    let g = got.clone();
    let a = green::spawn(move || {
        let _c = Cleanup(g);
        green::sleep(Duration::from_secs(10));
    });
    green::yield_now();
    // The outer timeout comes due while the inner one's destructor sleeps: raised
    // there, it would abort the process; it comes right after.
    a.kill();
    assert!(a.join().unwrap_err().is_killed());
    assert_eq!(*got.borrow(), [true, true]);
}

#[test]
fn a_timeout_raised_again_by_hand_in_a_kills_destructor_keeps_further_kills_out() {
    struct Cleanup(Rc<Cell<bool>>);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let t = green::with_timeout(Duration::from_millis(1), || {
                green::sleep(Duration::from_secs(1))
            })
            .unwrap_err();
            // Passed on as a panic and caught again: not a second timeout raised.
            let _ = green::Timeout::catch(|| std::panic::panic_any(t));
            green::sleep(Duration::from_millis(60));
            self.0.set(true);
        }
    }
    let done = Rc::new(Cell::new(false));
    let d = done.clone();
    let a = green::spawn(move || {
        let _c = Cleanup(d);
        green::sleep(Duration::from_secs(10));
    });
    green::yield_now();
    a.kill_nowait();
    green::sleep(Duration::from_millis(20)); // the destructor sleeps
    a.kill(); // raised there, this would abort the process
    assert!(a.join().unwrap_err().is_killed());
    assert!(done.get());
}

#[test]
fn a_caught_child_panic_does_not_hold_the_parents_timeouts_while_another_unwinds() {
    // A's destructor waits for B; B's timeout must fire although B caught a child's
    // panic while A unwinds.
    struct WaitsFor(green::Event);
    impl Drop for WaitsFor {
        fn drop(&mut self) {
            let _ = self.0.wait_timeout(Duration::from_secs(10));
        }
    }
    let ev = green::Event::new();
    let e = ev.clone();
    let a = green::spawn(move || {
        let _w = WaitsFor(e);
        green::sleep(Duration::from_secs(10));
    });
    green::yield_now();
    a.kill_nowait();
    green::yield_now(); // A unwinds; its destructor waits for B
    let e = ev.clone();
    let b = green::spawn(move || {
        let r = green::with_timeout(Duration::from_millis(30), || {
            let child = green::Greenlet::new(|_: Value| -> () { panic!("child failed") });
            let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                child.switch(());
            }));
            assert!(caught.is_err());
            green::sleep(Duration::from_secs(10));
        });
        e.set();
        r.is_err()
    });
    let t = Instant::now();
    assert!(b.join().unwrap(), "B's timeout fired");
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    assert!(a.join().unwrap_err().is_killed());
}

#[test]
fn an_orphan_that_caught_a_kill_while_another_unwinds_is_still_killed() {
    let a = unwinding_for(100);
    let main = green::getcurrent();
    let cleaned = Rc::new(Cell::new(false));
    let c = cleaned.clone();
    let g = green::Greenlet::new(move |_: Value| {
        let _d = SleepsOnDrop(0, c);
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            main.switch(());
        }));
        assert!(r.is_err(), "the kill was caught");
        main.switch(());
        green::sleep(Duration::from_secs(10));
    });
    g.switch(());
    g.throw(); // caught while A unwinds; it switches back here
    let t = Instant::now();
    // Its last handle: it must still be unwound (once A's unwinding is over), not left
    // to sleep with `drop` waiting for it.
    drop(g);
    assert!(cleaned.get());
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    assert!(a.join().unwrap_err().is_killed());
}

#[test]
fn a_timeout_armed_after_a_plainly_caught_one_is_held_while_a_kill_unwinds() {
    let a = unwinding_for(20);
    let b = green::spawn(|| {
        // Caught with a plain `catch_unwind` while A unwinds: B only seems to unwind.
        let g = green::Timeout::start(Duration::from_millis(1));
        let _ = std::panic::catch_unwind(|| green::sleep(Duration::from_secs(10)));
        drop(g);
        // Armed in ordinary code: while the kill below unwinds B, it must be held.
        let _ = green::with_timeout(Duration::from_millis(60), || {
            let _d = SleepsOnDrop(100, Rc::new(Cell::new(false)));
            green::sleep(Duration::from_secs(10));
        });
    });
    green::sleep(Duration::from_millis(5));
    assert!(a.join().unwrap_err().is_killed());
    green::sleep(Duration::from_millis(25));
    b.kill(); // its destructor sleeps past the 60 ms: raised there, the timeout aborts
    assert!(b.join().unwrap_err().is_killed());
}

#[test]
fn an_old_timeout_raised_again_in_a_kills_destructor_keeps_further_kills_out() {
    struct Cleanup(green::Timeout);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let t = self.0;
            let _ = green::Timeout::catch(|| std::panic::panic_any(t));
            green::sleep(Duration::from_millis(60));
        }
    }
    let a = green::spawn(|| {
        let g = green::Timeout::start(Duration::from_millis(1));
        let r = std::panic::catch_unwind(|| green::sleep(Duration::from_secs(1)));
        let t = *r.unwrap_err().downcast::<green::Timeout>().unwrap();
        drop(g);
        green::sleep(Duration::from_millis(5));
        let _c = Cleanup(t);
        green::sleep(Duration::from_secs(10));
    });
    green::sleep(Duration::from_millis(20));
    a.kill_nowait();
    green::sleep(Duration::from_millis(20)); // its destructor sleeps
    a.kill(); // raised there, this would abort the process
    assert!(a.join().unwrap_err().is_killed());
}

#[test]
fn an_outer_timeout_inside_a_kills_destructor_waits_for_a_long_inner_unwinding() {
    struct Cleanup(Rc<RefCell<Vec<(bool, Duration)>>>);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let t = Instant::now();
            let outer = green::with_timeout(Duration::from_millis(30), || {
                let inner = green::with_timeout(Duration::from_millis(10), || {
                    // Runs well past the outer deadline while the inner timeout unwinds.
                    let _d = SleepsOnDrop(1200, Rc::new(Cell::new(false)));
                    green::sleep(Duration::from_secs(10));
                });
                self.0.borrow_mut().push((inner.is_err(), t.elapsed()));
                green::sleep(Duration::from_secs(10));
            });
            self.0.borrow_mut().push((outer.is_err(), t.elapsed()));
        }
    }
    let got = Rc::new(RefCell::new(Vec::new()));
    let g = got.clone();
    let a = green::spawn(move || {
        let _c = Cleanup(g);
        green::sleep(Duration::from_secs(10));
    });
    green::yield_now();
    a.kill(); // raised while the inner destructor sleeps, the outer one would abort
    let got = got.borrow();
    assert_eq!(got.len(), 2);
    let ((inner, inner_done), (outer, outer_done)) = (got[0], got[1]);
    assert!(inner && outer);
    // Raised soon after the inner unwinding ended.
    assert!(
        outer_done - inner_done < Duration::from_millis(500),
        "{got:?}"
    );
}

#[test]
fn a_greenlet_killing_itself_in_a_kills_destructor_is_not_killed_twice() {
    type Slot = Rc<RefCell<Option<green::JoinHandle<()>>>>;
    struct KillsSelf(Slot, Rc<Cell<bool>>);
    impl Drop for KillsSelf {
        fn drop(&mut self) {
            green::sleep(Duration::from_millis(5));
            if let Some(me) = self.0.borrow().as_ref() {
                me.kill(); // raised here, it would abort the process
            }
            self.1.set(true);
        }
    }
    let slot: Slot = Rc::default();
    let done = Rc::new(Cell::new(false));
    let (s, d) = (slot.clone(), done.clone());
    let a = green::spawn(move || {
        let _k = KillsSelf(s, d);
        green::sleep(Duration::from_secs(10));
    });
    let g = a.greenlet().clone();
    green::yield_now();
    *slot.borrow_mut() = Some(a);
    green::throw_into(&g, Box::new(green::GreenletExit));
    let t = Instant::now();
    while !g.dead() && t.elapsed() < Duration::from_secs(5) {
        green::sleep(Duration::from_millis(5));
    }
    assert!(g.dead() && done.get());
    let a = slot.borrow_mut().take().unwrap();
    assert!(a.join().unwrap_err().is_killed());
}

#[test]
fn a_throw_held_while_a_kill_unwinds_does_not_decide_the_outcome() {
    let a = green::spawn(|| {
        let _d = SleepsOnDrop(40, Rc::new(Cell::new(false)));
        green::sleep(Duration::from_secs(10));
    });
    let g = a.greenlet().clone();
    green::yield_now();
    a.kill_nowait();
    green::sleep(Duration::from_millis(10)); // its destructor sleeps
    // Held (raised there, it would abort the process), and dropped when it dies.
    green::throw_into(&g, Box::new("not the outcome"));
    assert!(a.join().unwrap_err().is_killed());
}

#[test]
fn an_outer_timeout_firing_while_a_kills_destructor_sleeps_is_moot() {
    let cleaned = Rc::new(Cell::new(false));
    let c = cleaned.clone();
    struct LongCleanup(Rc<Cell<bool>>);
    impl Drop for LongCleanup {
        fn drop(&mut self) {
            green::sleep(Duration::from_millis(40));
            self.0.set(true);
        }
    }
    let h = green::spawn(move || {
        let _ = green::with_timeout(Duration::from_millis(20), || {
            let _c = LongCleanup(c);
            green::sleep(Duration::from_secs(10));
        });
    });
    green::yield_now();
    h.kill_nowait(); // its destructor sleeps 40 ms; the 20 ms timeout fires meanwhile
    assert!(h.join().unwrap_err().is_killed());
    assert!(cleaned.get());
}

#[test]
fn a_greenlet_that_killed_itself_is_not_killed_again_in_its_destructor() {
    let slot: Rc<RefCell<Option<green::JoinHandle<()>>>> = Rc::default();
    let s = slot.clone();
    let cleaned = Rc::new(Cell::new(false));
    let c = cleaned.clone();
    let h = green::spawn(move || {
        let _c = SleepyCleanup(c);
        let me = s.borrow_mut().take().unwrap();
        me.kill(); // kills itself: its destructor sleeps
    });
    let g = h.greenlet().clone();
    *slot.borrow_mut() = Some(h);
    green::yield_now(); // it kills itself; its destructor sleeps
    green::throw_into(&g, Box::new(green::GreenletExit)); // would abort if raised there
    green::sleep(Duration::from_millis(20));
    assert!(cleaned.get());
    assert!(g.dead());
}
