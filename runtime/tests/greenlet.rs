//! Explicit switching, ported from greenlet's own test suite (test_greenlet.py).

use std::cell::{Cell, RefCell};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;

use green::{Greenlet, GreenletExit, ParentError, Value, getcurrent};

type Log = Rc<RefCell<Vec<String>>>;

fn log() -> Log {
    Rc::default()
}

fn push(l: &Log, s: impl Into<String>) {
    l.borrow_mut().push(s.into());
}

#[test]
fn switch_order_follows_greenlets_test1_test2() {
    // gr1 = greenlet(test1); gr2 = greenlet(test2); gr1.switch()
    let l = log();
    let gr1_slot: Rc<RefCell<Option<Greenlet>>> = Rc::default();
    let (l2, s) = (l.clone(), gr1_slot.clone());
    let gr2 = Greenlet::new(move |_: Value| {
        push(&l2, "test2,first");
        s.borrow().clone().unwrap().switch(());
        push(&l2, "test2,second");
    });
    let (l1, g2) = (l.clone(), gr2.clone());
    let gr1 = Greenlet::new(move |_: Value| {
        push(&l1, "test1,first");
        g2.switch(());
        push(&l1, "test1,second");
        g2.switch(());
    });
    *gr1_slot.borrow_mut() = Some(gr1.clone());
    gr1.switch(());
    assert_eq!(
        *l.borrow(),
        ["test1,first", "test2,first", "test1,second", "test2,second"]
    );
    // gr2 returned into its parent (main); gr1 is still suspended in its second switch.
    assert!(gr2.dead() && !gr1.dead());
}

#[test]
fn values_pass_both_ways() {
    let main = getcurrent();
    let g = Greenlet::new(move |first: Value| {
        let mut acc = vec![first.get::<i32>().unwrap()];
        for _ in 0..3 {
            let next = main.switch(acc.len());
            acc.push(next.get::<i32>().unwrap());
        }
        acc
    });
    assert_eq!(g.switch(10).get::<usize>(), Ok(1));
    assert_eq!(g.switch(20).get::<usize>(), Ok(2));
    assert_eq!(g.switch(30).get::<usize>(), Ok(3));
    let done = g.switch(40);
    assert_eq!(done.downcast::<Vec<i32>>().unwrap(), vec![10, 20, 30, 40]);
    assert!(g.dead());
}

#[test]
fn return_value_goes_to_the_parent_not_the_last_switcher() {
    // b's parent is main, but a switches into b last: b's return goes to main.
    let a_log = log();
    let b = Greenlet::new(|x: Value| x.get::<i32>().unwrap() + 1);
    let (b2, l) = (b.clone(), a_log.clone());
    let a = Greenlet::new(move |_: Value| {
        let r = b2.switch(1);
        push(&l, format!("a got {r}"));
    });
    let r = a.switch(());
    assert_eq!(
        r.get::<i32>(),
        Ok(2),
        "b's return value reaches main, its parent"
    );
    assert!(a_log.borrow().is_empty(), "a never resumed");
    assert!(!a.dead());
}

#[test]
fn panic_surfaces_in_the_parent_at_its_switch_point() {
    let g = Greenlet::new(|_: Value| -> () { panic!("child failed") });
    let err = catch_unwind(AssertUnwindSafe(|| g.switch(()))).unwrap_err();
    assert_eq!(err.downcast_ref::<&str>(), Some(&"child failed"));
    assert!(g.dead());
    // The main greenlet carries on normally.
    let h = Greenlet::new(|_: Value| 5);
    assert_eq!(h.switch(()).get::<i32>(), Ok(5));
}

#[test]
fn panic_goes_to_the_parent_set_explicitly() {
    let main = getcurrent();
    let parent_saw = Rc::new(RefCell::new(None::<String>));
    let seen = parent_saw.clone();
    let parent = Greenlet::new(move |_: Value| {
        let child = Greenlet::new(|_: Value| -> () { panic!("deep") });
        let r = catch_unwind(AssertUnwindSafe(|| child.switch(())));
        *seen.borrow_mut() = r
            .err()
            .and_then(|p| p.downcast_ref::<&str>().map(|s| s.to_string()));
        main.switch("parent done")
    });
    assert_eq!(parent.switch(()).get::<&str>(), Ok("parent done"));
    assert_eq!(parent_saw.borrow().as_deref(), Some("deep"));
}

#[test]
fn small_and_large_values_pass_both_ways_and_through_the_driver() {
    #[derive(Debug, Clone, Copy, PartialEq)]
    struct Point(i16, i16);
    let main = getcurrent();
    let echo = Greenlet::new(move |mut v: Value| {
        loop {
            v = main.switch(v);
        }
    });
    assert_eq!(echo.switch(7u64).get::<u64>(), Ok(7));
    assert_eq!(echo.switch('x').get::<char>(), Ok('x'));
    assert_eq!(echo.switch(Point(-1, 2)).get::<Point>(), Ok(Point(-1, 2)));
    let v = echo.switch(String::from("boxed"));
    assert_eq!(v.get::<String>().as_deref(), Ok("boxed"));
    let v = echo.switch(1.5f32);
    assert_eq!((v.get::<f32>(), v.type_name()), (Ok(1.5), "f32"));

    // Main's switch enters the driver loop: the greenlet yields to the hub, runs again
    // from the ready queue, and only then switches a small value into main.
    let main = getcurrent();
    let via_hub = Greenlet::new(move |v: Value| {
        let x = v.get::<u8>().unwrap();
        green::yield_now();
        main.switch(x + 1);
    });
    assert_eq!(via_hub.switch(1u8).get::<u8>(), Ok(2));

    // Main switches a small value into a greenlet that waits in the ready queue (it
    // unparked itself): the queue entry goes stale, the value arrives.
    let main = getcurrent();
    let queued = Greenlet::new(move |_: Value| {
        assert!(green::park::unparker().unpark());
        let v = main.switch("queued");
        main.switch(v);
    });
    assert_eq!(queued.switch(()).get::<&str>(), Ok("queued"));
    assert_eq!(queued.switch(5u16).get::<u16>(), Ok(5));
    green::yield_now(); // the stale entry is skipped
    assert!(!queued.dead());
}

#[test]
fn switching_into_a_dead_greenlet_goes_to_its_nearest_live_ancestor() {
    let main = getcurrent();
    let dead = Greenlet::new(|_: Value| ());
    dead.switch(());
    assert!(dead.dead());
    // From another greenlet: switching to `dead` lands in main (dead's parent).
    let g = Greenlet::new(move |_: Value| {
        dead.switch("forwarded");
        unreachable!("main never switches back");
    });
    let v = g.switch(());
    assert_eq!(v.get::<&str>(), Ok("forwarded"));
    drop(main);
}

#[test]
fn dead_parent_chain_is_skipped() {
    let p = Greenlet::new(|_: Value| ());
    let c = Greenlet::new(|_: Value| "from child");
    c.set_parent(&p).unwrap();
    p.switch(());
    assert!(p.dead());
    // c returns into p, which is dead: it goes on to p's parent, main.
    assert_eq!(c.switch(()).get::<&str>(), Ok("from child"));
}

#[test]
fn throw_before_start_never_runs_the_function() {
    let ran = Rc::new(Cell::new(false));
    let r = ran.clone();
    let g = Greenlet::new(move |_: Value| r.set(true));
    let v = g.throw();
    assert!(v.is::<GreenletExit>());
    assert!(g.dead());
    assert!(!ran.get());
}

#[test]
fn throw_while_suspended_unwinds_and_runs_destructors() {
    struct Guard(Rc<Cell<bool>>);
    impl Drop for Guard {
        fn drop(&mut self) {
            self.0.set(true);
        }
    }
    let dropped = Rc::new(Cell::new(false));
    let d = dropped.clone();
    let main = getcurrent();
    let g = Greenlet::new(move |_: Value| {
        let _guard = Guard(d);
        main.switch("suspended");
        unreachable!("killed while suspended");
    });
    assert_eq!(g.switch(()).get::<&str>(), Ok("suspended"));
    assert!(!dropped.get());
    let v = g.throw();
    assert!(v.is::<GreenletExit>());
    assert!(dropped.get(), "destructors ran");
    assert!(g.dead());
}

#[test]
fn a_throw_into_a_dead_greenlet_ends_as_one_it_did_not_catch() {
    // greenlet's rule: GreenletExit comes back as the value, anything else is raised
    // where the dead greenlet's parent would see it (here the caller, without a switch).
    let g = Greenlet::new(|_: Value| 1);
    assert_eq!(g.switch(()).get::<i32>(), Ok(1));
    assert!(g.dead());
    assert!(g.throw().is::<GreenletExit>());
    assert!(g.kill().is::<GreenletExit>());
    assert!(g.throw_with(Box::new(GreenletExit)).is::<GreenletExit>());
    let raised = catch_unwind(AssertUnwindSafe(|| g.throw_with(Box::new("late"))));
    assert_eq!(raised.unwrap_err().downcast_ref::<&str>(), Some(&"late"));
    assert!(g.dead());
}

#[test]
fn a_throw_into_a_dead_greenlet_switches_to_nobody() {
    // A dead greenlet whose parent is suspended: a switch into the dead one goes on to
    // the parent, a throw does not.
    let l = log();
    let main = getcurrent();
    let l2 = l.clone();
    let parent = Greenlet::new(move |_: Value| {
        push(&l2, "parent started");
        let v = main.switch(());
        push(&l2, format!("parent resumed with {v}"));
    });
    parent.switch(());
    let child = Greenlet::new(|_: Value| ());
    child.switch(());
    assert!(child.dead());
    child.set_parent(&parent).unwrap();
    assert!(child.throw().is::<GreenletExit>());
    let raised = catch_unwind(AssertUnwindSafe(|| child.throw_with(Box::new(7u8))));
    assert_eq!(raised.unwrap_err().downcast_ref::<u8>(), Some(&7));
    assert_eq!(
        *l.borrow(),
        ["parent started"],
        "the parent was not resumed"
    );
    child.switch("forwarded"); // a switch does reach it
    assert_eq!(
        *l.borrow(),
        ["parent started", "parent resumed with forwarded"]
    );
}

#[test]
fn a_greenlet_may_catch_a_thrown_payload_and_return() {
    let main = getcurrent();
    let g =
        Greenlet::new(
            move |_: Value| match catch_unwind(AssertUnwindSafe(|| main.switch(()))) {
                Ok(_) => "not thrown",
                Err(p) if p.is::<GreenletExit>() => "caught exit",
                Err(_) => "other",
            },
        );
    g.switch(());
    assert_eq!(g.throw().get::<&str>(), Ok("caught exit"));
}

#[test]
fn dropping_the_last_handle_unwinds_a_suspended_greenlet() {
    struct Guard(Rc<Cell<u32>>);
    impl Drop for Guard {
        fn drop(&mut self) {
            self.0.set(self.0.get() + 1);
        }
    }
    let drops = Rc::new(Cell::new(0));
    let d = drops.clone();
    let main = getcurrent();
    let g = Greenlet::new(move |_: Value| {
        let _guard = Guard(d);
        main.switch(());
    });
    g.switch(());
    assert_eq!(drops.get(), 0);
    drop(g);
    assert_eq!(drops.get(), 1, "the suspended greenlet was unwound on drop");
}

#[test]
fn dropping_an_unstarted_greenlet_drops_its_closure() {
    let token = Rc::new(());
    let t = token.clone();
    let g = Greenlet::new(move |_: Value| drop(t));
    assert_eq!(Rc::strong_count(&token), 2);
    drop(g);
    assert_eq!(Rc::strong_count(&token), 1);
}

#[test]
fn dropped_inside_a_greenlet_is_unwound_by_the_hub() {
    let drops = Rc::new(Cell::new(0));
    struct Guard(Rc<Cell<u32>>);
    impl Drop for Guard {
        fn drop(&mut self) {
            self.0.set(self.0.get() + 1);
        }
    }
    let d = drops.clone();
    let h = green::spawn(move || {
        let me = getcurrent();
        let inner = Greenlet::new(move |_: Value| {
            let _g = Guard(d);
            me.switch(());
        });
        inner.switch(());
        drop(inner); // deferred: the hub unwinds it
    });
    h.join().unwrap();
    green::yield_now();
    assert_eq!(drops.get(), 1);
}

#[test]
fn started_dead_and_current() {
    let main = getcurrent();
    assert!(main.is_main() && main.is_current() && main.started() && !main.dead());
    let m2 = main.clone();
    let g = Greenlet::new(move |_: Value| {
        let me = getcurrent();
        assert!(me.is_current() && me.started() && !me.dead());
        m2.switch(me.id());
    });
    assert!(!g.started());
    assert_eq!(g.switch(()).get::<u64>(), Ok(g.id()));
    assert!(g.started() && !g.dead() && !g.is_current());
}

#[test]
fn switch_to_self_returns_the_argument() {
    assert_eq!(getcurrent().switch(9).get::<i32>(), Ok(9));
}

#[test]
fn parent_defaults_to_creator_and_cycles_are_rejected() {
    let main = getcurrent();
    let a = Greenlet::new(|_: Value| ());
    assert_eq!(a.parent(), Some(main.clone()));
    let b = Greenlet::new(|_: Value| ());
    let c = Greenlet::new(|_: Value| ());
    b.set_parent(&a).unwrap();
    c.set_parent(&b).unwrap();
    assert_eq!(a.set_parent(&c), Err(ParentError::Cycle));
    assert_eq!(a.set_parent(&a), Err(ParentError::Cycle));
    assert_eq!(main.set_parent(&a), Err(ParentError::Root));
    // Created inside another greenlet: that greenlet is the parent.
    let outer = Greenlet::new(|_: Value| Greenlet::new(|_: Value| ()).parent().unwrap().id());
    let outer_id = outer.id();
    assert_eq!(outer.switch(()).get::<u64>(), Ok(outer_id));
}

#[test]
fn value_type_mismatch_is_a_clear_error() {
    let g = Greenlet::new(|v: Value| v.get::<i32>().map_err(|e| e.to_string()));
    let r = g
        .switch("not a number")
        .downcast::<Result<i32, String>>()
        .unwrap();
    assert_eq!(
        r.unwrap_err(),
        "expected a value of type `i32`, found `&str`"
    );
}

#[test]
fn greenlets_nest_and_explicit_switch_mixes_with_the_hub() {
    // A greenlet created by main sleeps (switching to the hub); main's switch waits.
    let g = Greenlet::new(|_: Value| {
        green::sleep(std::time::Duration::from_millis(5));
        "slept"
    });
    assert_eq!(g.switch(()).get::<&str>(), Ok("slept"));
}

#[test]
fn greenlet_handles_are_not_send() {
    // Compile-time property, checked through a trait-object test: `Greenlet` must not
    // implement `Send`. (If it did, this helper would pick the `Send` impl.)
    trait IsSend {
        fn is_send(&self) -> bool;
    }
    impl<T> IsSend for T {
        fn is_send(&self) -> bool {
            false
        }
    }
    struct Probe<T>(T);
    impl<T: Send> Probe<T> {
        #[allow(dead_code)]
        fn is_send(&self) -> bool {
            true
        }
    }
    assert!(!Probe(getcurrent()).is_send());
    assert!(Probe(5u8).is_send());
}

#[test]
fn a_queued_kill_wins_over_an_explicit_switch_that_comes_first() {
    // `throw_into` queues the kill for the hub; main then switches into the greenlet
    // directly before the hub ever runs. The kill must not be lost: the greenlet
    // unwinds at its switch point and its death reaches main, not the value.
    let main = getcurrent();
    let unwound = Rc::new(Cell::new(false));
    let u = unwound.clone();
    let g = Greenlet::new(move |_: Value| {
        struct Flag(Rc<Cell<bool>>);
        impl Drop for Flag {
            fn drop(&mut self) {
                self.0.set(true);
            }
        }
        let _f = Flag(u);
        let v = main.switch(());
        panic!("resumed with {v} instead of the queued kill");
    });
    g.switch(());
    green::throw_into(&g, Box::new(GreenletExit));
    let back = g.switch("a value");
    assert!(back.is::<GreenletExit>(), "main got {back:?}");
    assert!(g.dead());
    assert!(unwound.get());
    // The stale queue entry does nothing when the hub runs.
    green::yield_now();
    assert!(g.dead());
}

#[test]
fn a_throw_a_greenlet_queued_for_itself_before_returning_does_not_reach_its_parent() {
    let g = Greenlet::new(|_: Value| {
        green::throw_into(&getcurrent(), Box::new(GreenletExit));
        "returned"
    });
    assert_eq!(g.switch(()).get::<&str>(), Ok("returned"));
    // The stale queue entry must not unwind main here.
    let r = catch_unwind(AssertUnwindSafe(green::yield_now));
    assert!(r.is_ok());
}

#[test]
fn dropping_an_orphan_from_main_does_not_swallow_mains_timeout() {
    struct SlowDrop;
    impl Drop for SlowDrop {
        fn drop(&mut self) {
            green::sleep(std::time::Duration::from_millis(30));
        }
    }
    let m = getcurrent();
    let g = Greenlet::new(move |_: Value| {
        let _s = SlowDrop;
        m.switch(());
    });
    g.switch(());
    let t = std::time::Instant::now();
    let r = green::with_timeout(std::time::Duration::from_millis(10), move || {
        drop(g); // unwinds the orphan now; its destructor sleeps 30 ms
        green::sleep(std::time::Duration::from_secs(5));
        "body finished"
    });
    assert!(r.is_err(), "{r:?}");
    // The body asked for 5 s: the timeout cut it short.
    assert!(
        t.elapsed() < std::time::Duration::from_millis(2500),
        "{:?}",
        t.elapsed()
    );
}

#[test]
fn dropping_a_greenlet_whose_kill_destructor_switched_away_lets_it_finish() {
    struct SwitchBack(Greenlet, Rc<Cell<bool>>);
    impl Drop for SwitchBack {
        fn drop(&mut self) {
            self.0.switch(());
            self.1.set(true);
        }
    }
    let done = Rc::new(Cell::new(false));
    let d = done.clone();
    let m = getcurrent();
    let g = Greenlet::new(move |_: Value| {
        let _d = SwitchBack(m.clone(), d);
        m.switch(());
    });
    g.switch(());
    green::throw_into(&g, Box::new(GreenletExit));
    g.switch(()); // the kill unwinds it; its destructor switches back here
    drop(g); // the last handle: the orphan must finish its unwinding, not get a new kill
    green::yield_now();
    green::sleep(std::time::Duration::from_millis(5));
    assert!(done.get());
}

/// Sets its flag when dropped: a greenlet's frame was unwound.
struct SetOnDrop(Rc<Cell<bool>>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

#[test]
fn switching_to_the_parent_in_two_lines_lets_the_last_handle_unwind_it() {
    let unwound = Rc::new(Cell::new(false));
    let u = unwound.clone();
    let g = Greenlet::new(move |_: Value| {
        let _flag = SetOnDrop(u);
        let parent = getcurrent().parent().unwrap();
        parent.switch(());
    });
    g.switch(());
    drop(g); // the last handle: the greenlet unwinds at once (main drops it)
    assert!(unwound.get());
}

#[test]
fn switching_to_the_parent_in_one_expression_keeps_a_handle_on_its_own_stack() {
    let unwound = Rc::new(Cell::new(false));
    let u = unwound.clone();
    let g = Greenlet::new(move |_: Value| {
        let _flag = SetOnDrop(u);
        // `getcurrent()`'s temporary lives until the end of the statement, across the
        // switch (the guide's "Parents" note).
        getcurrent().parent().unwrap().switch(());
    });
    g.switch(());
    drop(g); // every handle outside it
    assert!(
        !unwound.get(),
        "still suspended: a handle to it is on its own stack"
    );
}
