//! A switch into a greenlet parked in the hub (sleeping, waiting for IO, a lock, an
//! event, a join, or yielding) is refused: only the hub resumes such a greenlet. The
//! caller gets the refusal (`try_switch`'s error, `switch`'s panic) instead of being
//! left suspended for good, and the parked greenlet's wait goes on untouched.

#[path = "../../tests/support/watchdog.rs"]
mod watchdog;

use std::cell::{Cell, RefCell};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;
use std::time::{Duration, Instant};

use green::{Greenlet, SwitchError, Value, getcurrent, spawn, yield_now};

const MS: Duration = Duration::from_millis(1);

/// The message of a panic payload.
fn message(p: Box<dyn std::any::Any + Send>) -> String {
    match p.downcast::<String>() {
        Ok(s) => *s,
        Err(p) => match p.downcast::<&str>() {
            Ok(s) => s.to_string(),
            Err(_) => "<not a string>".into(),
        },
    }
}

#[test]
fn switching_into_a_sleeping_greenlet_panics_in_the_caller() {
    let _dog = watchdog::arm();
    let t = Instant::now();
    let sleeper = green::Builder::new()
        .name("sleeper")
        .spawn(move || {
            green::sleep(30 * MS);
            t.elapsed()
        })
        .unwrap();
    yield_now(); // it parks in its sleep
    let target = sleeper.greenlet().clone();
    let switcher = spawn(move || {
        catch_unwind(AssertUnwindSafe(|| {
            target.switch(());
        }))
        .map_err(message)
    });
    let refused = switcher.join().expect("the switcher was left suspended");
    let msg = refused.expect_err("the switch went through");
    assert!(msg.contains("sleeper") && msg.contains("parked"), "{msg}");
    // The sleep was not cut short.
    assert!(sleeper.join().unwrap() >= 30 * MS);
}

#[test]
fn main_switching_into_a_parked_greenlet_panics() {
    let _dog = watchdog::arm();
    let sleeper = spawn(|| green::sleep(10 * MS));
    yield_now();
    let r = catch_unwind(AssertUnwindSafe(|| {
        sleeper.greenlet().switch(());
    }));
    let msg = message(r.expect_err("the switch went through"));
    assert!(msg.contains("parked"), "{msg}");
    sleeper.join().unwrap();
}

#[test]
fn try_switch_reports_each_refusal() {
    let _dog = watchdog::arm();
    // Parked: a greenlet waiting for an event; the wait goes on untouched.
    let ev = green::Event::new();
    let e = ev.clone();
    let waiter = green::Builder::new()
        .name("waiter")
        .spawn(move || e.wait())
        .unwrap();
    yield_now();
    let id = waiter.greenlet().id();
    let err = waiter.greenlet().try_switch(5u32).unwrap_err();
    assert_eq!(
        err,
        SwitchError::Parked {
            id,
            name: Some("waiter".into())
        }
    );
    assert!(!waiter.is_finished());
    ev.set();
    assert_eq!(waiter.join().unwrap(), Ok(true));

    // Yielded: a greenlet waiting for its turn in the ready queue.
    let yielder = spawn(|| {
        for _ in 0..3 {
            yield_now();
        }
        "done"
    });
    yield_now(); // it runs and yields; main runs again before it
    let err = yielder.greenlet().try_switch(()).unwrap_err();
    assert!(matches!(err, SwitchError::Yielded { .. }), "{err:?}");
    assert!(err.to_string().contains("yield"), "{err}");
    assert_eq!(yielder.join().unwrap(), "done");

    // From the hub: refused before looking at the target.
    let seen = Rc::new(RefCell::new(None));
    let s = seen.clone();
    let main = getcurrent();
    green::timer::call_later(Duration::ZERO, move || {
        *s.borrow_mut() = Some(main.try_switch(()).map(|_| ()));
    });
    green::sleep(5 * MS);
    assert_eq!(seen.borrow_mut().take(), Some(Err(SwitchError::InHub)));
}

#[test]
fn a_switch_into_main_parked_in_a_sleep_is_refused() {
    let _dog = watchdog::arm();
    let main = getcurrent();
    let switcher = spawn(move || main.try_switch(()).map(|_| ()));
    let t = Instant::now();
    green::sleep(20 * MS);
    assert!(t.elapsed() >= 20 * MS, "main's sleep was cut short");
    let err = switcher.join().unwrap().unwrap_err();
    assert!(
        matches!(&err, SwitchError::Parked { name: Some(n), .. } if n == "main"),
        "{err:?}"
    );
}

#[test]
fn a_throw_into_a_parked_greenlet_still_unwinds_it() {
    let _dog = watchdog::arm();
    struct Flag(Rc<Cell<bool>>);
    impl Drop for Flag {
        fn drop(&mut self) {
            self.0.set(true);
        }
    }
    let unwound = Rc::new(Cell::new(false));
    let u = unwound.clone();
    // Main's child, started by another greenlet, parks in a long sleep.
    let g = Greenlet::new(move |_: Value| {
        let _f = Flag(u);
        green::sleep(Duration::from_secs(60));
    });
    let g2 = g.clone();
    let starter = spawn(move || {
        g2.switch(());
    });
    yield_now();
    assert!(g.try_switch(()).is_err(), "it is parked");
    assert!(g.throw().is::<green::GreenletExit>());
    assert!(g.dead() && unwound.get());
    starter.kill();
}
