//! The trace hook (greenlet's `settrace`): its events on explicit switches, throws and
//! the hub's switches, the previous hook it returns, and a hook that switches.

#[path = "../../tests/support/log_capture.rs"]
mod log_capture;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use green::{Greenlet, TraceEvent, TraceHook, Value, getcurrent};

type Seen = Rc<RefCell<Vec<(TraceEvent, u64, u64)>>>;

/// Sets a hook recording (event, origin id, target id); returns the log.
fn record() -> Seen {
    let seen: Seen = Rc::default();
    let s = seen.clone();
    green::settrace(Some(TraceHook::new(move |e, o, t| {
        s.borrow_mut().push((e, o.id(), t.id()));
    })));
    seen
}

#[test]
fn explicit_switches_are_traced_with_origin_and_target() {
    let main = getcurrent();
    let m = main.clone();
    let g = Greenlet::new(move |_: Value| {
        m.switch(1);
        m.switch(2);
    });
    let seen = record();
    g.switch(());
    g.switch(());
    g.switch(()); // returns into main
    green::settrace(None);
    let (mi, gi) = (main.id(), g.id());
    let sw = TraceEvent::Switch;
    assert_eq!(
        *seen.borrow(),
        [
            (sw, mi, gi),
            (sw, gi, mi),
            (sw, mi, gi),
            (sw, gi, mi),
            (sw, mi, gi),
            (sw, gi, mi)
        ]
    );
}

#[test]
fn a_throw_is_traced_as_throw() {
    let main = getcurrent();
    let m = main.clone();
    let g = Greenlet::new(move |_: Value| {
        m.switch(());
    });
    g.switch(());
    let seen = record();
    let _ = g.throw();
    green::settrace(None);
    let (mi, gi) = (main.id(), g.id());
    assert_eq!(
        *seen.borrow(),
        [(TraceEvent::Throw, mi, gi), (TraceEvent::Switch, gi, mi)]
    );
}

#[test]
fn switches_through_the_hub_name_the_greenlet_that_parked() {
    let seen = record();
    let a = green::spawn(|| green::sleep(Duration::from_millis(5)));
    let b = green::spawn(|| green::getcurrent().id());
    let (ai, bi) = (a.greenlet().id(), b.greenlet().id());
    let b_id = b.join().unwrap();
    a.join().unwrap();
    green::settrace(None);
    let mi = getcurrent().id();
    assert_eq!(b_id, bi);
    let seen = seen.borrow();
    // main parks in join: a runs first, parks in sleep, then b runs.
    assert_eq!(seen[0], (TraceEvent::Switch, mi, ai));
    assert_eq!(seen[1], (TraceEvent::Switch, ai, bi));
    assert!(seen.contains(&(TraceEvent::Switch, bi, mi)), "{seen:?}");
    assert_eq!(seen.last().map(|e| e.2), Some(mi));
}

#[test]
fn settrace_returns_the_previous_hook() {
    assert!(green::gettrace().is_none());
    let first = TraceHook::new(|_, _, _| {});
    assert!(green::settrace(Some(first.clone())).is_none());
    let second = TraceHook::new(|_, _, _| {});
    let prev = green::settrace(Some(second)).expect("the first hook");
    assert_eq!(format!("{prev:?}"), format!("{first:?}"));
    assert!(green::settrace(None).is_some());
    assert!(green::gettrace().is_none());
}

#[test]
fn a_hook_may_remove_itself() {
    let n = Rc::new(RefCell::new(0));
    let k = n.clone();
    green::settrace(Some(TraceHook::new(move |_, _, _| {
        *k.borrow_mut() += 1;
        green::settrace(None);
    })));
    let g = Greenlet::new(|_: Value| 5);
    assert_eq!(g.switch(()).get::<i32>(), Ok(5));
    assert_eq!(*n.borrow(), 1);
    assert!(green::gettrace().is_none());
}

#[test]
fn a_hook_that_switches_is_reported_and_removed() {
    log_capture::install(log::LevelFilter::Error);
    let main = getcurrent();
    let tried = Rc::new(RefCell::new(None));
    let t = tried.clone();
    green::settrace(Some(TraceHook::new(move |_, origin, target| {
        // Refused without a panic by try_switch, with one by switch.
        *t.borrow_mut() = Some(target.try_switch(()).is_err());
        origin.switch(());
    })));
    let m = main.clone();
    let g = Greenlet::new(move |_: Value| {
        m.switch(7);
        8
    });
    // The switch happens anyway, and the next one is not traced any more.
    assert_eq!(g.switch(()).get::<i32>(), Ok(7));
    assert!(green::gettrace().is_none());
    assert_eq!(*tried.borrow(), Some(true));
    assert_eq!(g.switch(()).get::<i32>(), Ok(8));
    assert_eq!(
        log_capture::logged("a trace hook must not switch greenlets"),
        1
    );
}

#[test]
fn no_hook_on_another_thread() {
    let _ = record();
    let other = std::thread::spawn(|| {
        green::gettrace().is_none() && green::spawn(|| 1).join().unwrap() == 1
    });
    assert!(other.join().unwrap());
    green::settrace(None);
}
