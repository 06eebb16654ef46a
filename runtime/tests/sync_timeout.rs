//! Timeouts: gevent's test__timeout.py behaviours.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use green::{Timeout, sleep, spawn, with_timeout};

const MS: Duration = Duration::from_millis(1);

#[test]
fn interrupts_and_runs_destructors() {
    struct Flag(Rc<Cell<bool>>);
    impl Drop for Flag {
        fn drop(&mut self) {
            self.0.set(true);
        }
    }
    let dropped = Rc::new(Cell::new(false));
    let d = dropped.clone();
    let t = Instant::now();
    let r = with_timeout(20 * MS, move || {
        let _f = Flag(d);
        sleep(Duration::from_secs(10));
    });
    assert!(r.is_err());
    assert!(dropped.get());
    assert!(t.elapsed() < Duration::from_secs(5));
}

#[test]
fn finished_body_returns_value() {
    assert_eq!(with_timeout(Duration::from_secs(5), || 7), Ok(7));
    assert_eq!(
        with_timeout(Duration::from_secs(5), || {
            sleep(MS);
            8
        }),
        Ok(8)
    );
}

#[test]
fn nested_inner_shorter_fires_inner() {
    let outer = with_timeout(Duration::from_secs(5), || {
        let inner = with_timeout(10 * MS, || sleep(Duration::from_secs(10)));
        assert_eq!(inner.unwrap_err().duration(), 10 * MS);
        "outer finished"
    });
    assert_eq!(outer, Ok("outer finished"));
}

#[test]
fn nested_outer_shorter_passes_through_inner() {
    let inner_saw = Rc::new(Cell::new(false));
    let s = inner_saw.clone();
    let outer = with_timeout(10 * MS, move || {
        let r = with_timeout(Duration::from_secs(5), || sleep(Duration::from_secs(10)));
        s.set(true); // never reached: the outer timeout unwinds through
        r
    });
    let t = outer.unwrap_err();
    assert_eq!(t.duration(), 10 * MS);
    assert!(!inner_saw.get());
}

#[test]
fn guard_form_ids_tell_whose_timeout_fired() {
    let a = Timeout::start(Duration::from_secs(5));
    let b = Timeout::start(10 * MS);
    let t = Timeout::catch(|| sleep(Duration::from_secs(10))).unwrap_err();
    assert!(b.is(&t));
    assert!(!a.is(&t));
    assert!(a.pending());
    assert!(!b.pending());
}

#[test]
fn cancelled_timeout_never_fires_later() {
    for _ in 0..20 {
        let r = with_timeout(2 * MS, || sleep(Duration::from_micros(1500)));
        assert!(r.is_ok() || r.is_err());
    }
    // A body that finished just before its deadline: nothing may hit us afterwards.
    let r = with_timeout(5 * MS, || ());
    assert!(r.is_ok());
    let g = Timeout::start(5 * MS);
    g.cancel();
    // Sleep well past both deadlines: a stray throw would unwind this test.
    sleep(30 * MS);
}

#[test]
fn stale_throw_already_queued_is_withdrawn() {
    // `a` arms a timeout and hands the guard to `b`. Both timers (b's wake-up first,
    // then a's timeout) come due in the same batch while main spins, so the hub
    // queues `b` and then a's throw. `b` runs first and drops the guard: the throw
    // already queued must be withdrawn, and `a` must sleep on undisturbed.
    let slot: Rc<std::cell::RefCell<Option<green::TimeoutGuard>>> = Rc::default();
    let s = slot.clone();
    let b = spawn(move || {
        sleep(5 * MS);
        drop(s.borrow_mut().take());
    });
    let s = slot.clone();
    let a = spawn(move || {
        *s.borrow_mut() = Some(Timeout::start(6 * MS));
        Timeout::catch(|| sleep(60 * MS)).is_ok()
    });
    green::yield_now(); // both start: b sleeps, a arms its timeout and sleeps
    assert!(slot.borrow().is_some());
    let t = Instant::now();
    while t.elapsed() < 30 * MS {
        std::hint::spin_loop(); // no switch: both timers become overdue
    }
    b.join().unwrap();
    assert!(a.join().unwrap(), "a cancelled timeout hit its greenlet");
}

#[test]
fn timeout_in_spawned_greenlet_and_uncaught_payload() {
    let h = spawn(|| with_timeout(5 * MS, || sleep(Duration::from_secs(5))).is_err());
    assert!(h.join().unwrap());
    // Uncaught guard-form timeout unwinds the greenlet: it counts as panicked.
    let h = spawn(|| {
        let _g = Timeout::start(5 * MS);
        sleep(Duration::from_secs(5));
    });
    let err = h.join().unwrap_err();
    assert!(err.is_panic());
    assert!(err.into_panic().is::<Timeout>());
}

#[test]
fn other_panics_pass_through() {
    let r = std::panic::catch_unwind(|| {
        let _ = with_timeout(Duration::from_secs(5), || std::panic::panic_any(42u8));
    });
    assert_eq!(r.unwrap_err().downcast_ref::<u8>(), Some(&42));
}

#[test]
fn timeout_in_main_greenlet_interrupts_queue_get() {
    let q: green::Queue<i32> = green::Queue::new();
    let r = with_timeout(10 * MS, || q.get());
    assert!(r.is_err());
    assert_eq!(q.getters(), 0, "the interrupted getter left the line");
}

/// Runs without switching for `d`, so that every timer due meanwhile fires in one batch
/// when the hub next runs.
fn busy(d: Duration) {
    let t = Instant::now();
    while t.elapsed() < d {
        std::hint::spin_loop();
    }
}

#[test]
fn a_kill_is_not_replaced_by_a_timeout_due_in_the_same_batch() {
    // The kill's timer is armed first and the greenlet's own timeout right after, for
    // the same instant: both fire in one batch, the kill first.
    let d = Instant::now() + 20 * MS;
    let target: Rc<Cell<Option<green::Greenlet>>> = Rc::new(Cell::new(None));
    let t2 = target.clone();
    green::timer::call_at(d, move || {
        if let Some(g) = t2.take() {
            green::throw_into(&g, Box::new(green::GreenletExit));
        }
    });
    let h = spawn(move || {
        let _ = green::with_deadline(d, || sleep(Duration::from_secs(10)));
        sleep(5 * MS);
        "survived"
    });
    green::yield_now(); // it starts and parks under its timeout
    target.set(Some(h.greenlet().clone()));
    busy(60 * MS);
    let t = Instant::now();
    assert!(h.join().unwrap_err().is_killed());
    assert!(t.elapsed() < Duration::from_secs(5));
}

#[test]
fn nested_timeouts_due_in_one_batch_interrupt_the_outer_scope() {
    // Outer due first, then inner due first: either way the outer one is delivered (the
    // inner one's throw, due in the same batch, must not replace it) and unwinds both
    // scopes, so the outer body is interrupted.
    for (outer, inner) in [(0, 1), (1, 0)] {
        let h = spawn(move || {
            let d = Instant::now() + 20 * MS;
            let t = Instant::now();
            let r = green::with_deadline(d + outer * MS, || {
                let _ = green::with_deadline(d + inner * MS, || sleep(Duration::from_secs(10)));
                sleep(Duration::from_secs(2));
            });
            (r.is_err(), t.elapsed())
        });
        green::yield_now();
        busy(60 * MS);
        let (timed_out, took) = h.join().unwrap();
        assert!(timed_out);
        assert!(took < Duration::from_secs(1), "{took:?}");
    }
}

#[test]
fn a_spawn_later_greenlet_killed_in_the_batch_of_its_start_never_runs() {
    let ran = Rc::new(Cell::new(false));
    let target: Rc<Cell<Option<green::Greenlet>>> = Rc::new(Cell::new(None));
    let t2 = target.clone();
    // The kill's timer first, then the start's, both due after 20 ms.
    green::timer::call_later(20 * MS, move || {
        if let Some(g) = t2.take() {
            green::throw_into(&g, Box::new(green::GreenletExit));
        }
    });
    let r = ran.clone();
    let h = green::spawn_later(20 * MS, move || r.set(true));
    target.set(Some(h.greenlet().clone()));
    busy(60 * MS);
    assert!(h.join().unwrap_err().is_killed());
    assert!(!ran.get());
}

#[test]
fn main_timeout_wins_over_an_explicit_switch_to_main() {
    let main = green::getcurrent();
    // Main switches to a child that sleeps 20 ms and then switches back to main; a busy
    // greenlet makes that wake and main's 50 ms timeout fire in one batch, the timeout
    // queued for main (switched away explicitly, not parked) before the child's switch.
    let child = green::Greenlet::new(move |_: green::Value| {
        sleep(20 * MS);
        main.switch("the child's value");
    });
    let _busy = spawn(|| busy(100 * MS));
    let t = Instant::now();
    let r = with_timeout(50 * MS, || child.switch(()));
    assert!(r.is_err(), "main got {:?}", r.map(|v| v.to_string()));
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
}

/// The calling greenlet switches, under a 30 ms timeout, to a raw child that panics at
/// 20 ms; a busy greenlet makes the panic and the timeout come up in one batch, the
/// timeout queued for the caller. Returns what the caller caught: the child's panic
/// message, or an error naming what else it got.
fn child_panic_against_own_timeout() -> Result<&'static str, String> {
    let child = green::Greenlet::new(|_: green::Value| {
        sleep(20 * MS);
        panic!("child bug");
    });
    let _busy = spawn(|| busy(100 * MS));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        with_timeout(30 * MS, || {
            child.switch(());
        })
    }));
    let got = match r {
        Ok(r) => Err(format!("no panic reached the caller ({r:?})")),
        Err(p) => match p.downcast::<&str>() {
            Ok(msg) => Ok(*msg),
            Err(p) => Err(format!("got {:?}, not the child's panic", p.type_id())),
        },
    };
    // The caller's timeout, withdrawn with its scope, does not fire later.
    sleep(50 * MS);
    got
}

#[test]
fn a_childs_panic_reaching_main_is_not_replaced_by_mains_timeout() {
    assert_eq!(child_panic_against_own_timeout(), Ok("child bug"));
}

#[test]
fn a_childs_panic_reaching_a_parent_greenlet_is_not_replaced_by_its_timeout() {
    // As above, with a spawned greenlet as the child's parent.
    let parent = spawn(child_panic_against_own_timeout);
    assert_eq!(parent.join().unwrap(), Ok("child bug"));
}

#[test]
fn a_queued_timeout_wins_over_another_greenlets_switch_into_its_target() {
    // `target` switched away explicitly under a timeout due at `d` + 1 ms; `switcher`
    // wakes at `d` and switches into it. A busy main makes both timers fire in one
    // batch, the switcher's first: the timeout is queued for `target` when the
    // switcher's switch comes, and must be raised at the switch point it resumes at.
    let d = Instant::now() + 20 * MS;
    let main = green::getcurrent();
    let target = green::Greenlet::new(move |_: green::Value| {
        let r = green::with_deadline(d + MS, || {
            main.switch(());
            "resumed as if no timeout happened"
        });
        r.map_err(|t| t.to_string())
    });
    target.switch(());
    let t2 = target.clone();
    let switcher = spawn(move || {
        green::sleep_until(d);
        // Its outcome comes back here rather than to main.
        t2.set_parent(&green::getcurrent()).unwrap();
        t2.switch("the switcher's value")
            .get::<Result<&str, String>>()
    });
    green::yield_now(); // the switcher sleeps
    busy(40 * MS);
    let got = switcher.join().unwrap().unwrap();
    assert!(got.is_err(), "{got:?}");
    assert!(target.dead());
}
