//! Links of a spawned greenlet: `link` returns an id, `unlink` withdraws one,
//! `unlink_all` every one, `has_links` tells whether any waits to run (gevent's
//! `Greenlet.link`, `unlink`, `unlink_all`, `has_links`).

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

type Log = Rc<RefCell<Vec<&'static str>>>;

fn logger(log: &Log, what: &'static str) -> impl FnOnce(Result<&i32, &green::JoinError>) + 'static {
    let log = log.clone();
    move |_| log.borrow_mut().push(what)
}

#[test]
fn unlink_withdraws_one_link_and_the_others_run_in_order() {
    let log: Log = Rc::default();
    let h = green::spawn(|| 7);
    let _a = h.link(logger(&log, "a"));
    let b = h.link(logger(&log, "b"));
    let _c = h.link(logger(&log, "c"));
    assert!(h.unlink(b));
    assert!(!h.unlink(b), "withdrawn already");
    assert_eq!(h.join().unwrap(), 7);
    assert_eq!(*log.borrow(), ["a", "c"]);
}

#[test]
fn a_withdrawn_link_is_dropped_at_once() {
    let captured = Rc::new(());
    let c = captured.clone();
    let h = green::spawn(|| green::sleep(Duration::from_secs(60)));
    let id = h.link(move |_| drop(c));
    assert_eq!(Rc::strong_count(&captured), 2);
    assert!(h.unlink(id));
    assert_eq!(
        Rc::strong_count(&captured),
        1,
        "the closure went with its link"
    );
    h.kill();
}

#[test]
fn has_links_follows_link_unlink_and_the_greenlets_end() {
    let h = green::spawn(|| 1);
    assert!(!h.has_links());
    let id = h.link(|_| ());
    assert!(h.has_links());
    assert!(h.unlink(id));
    assert!(!h.has_links());
    h.link_value(|_| ());
    h.link_error(|_| ());
    assert!(h.has_links());
    h.wait().unwrap();
    assert!(!h.has_links(), "the links ran");
}

#[test]
fn unlink_all_withdraws_every_link_but_leaves_the_runtimes_own_callbacks() {
    let log: Log = Rc::default();
    let group = green::Group::new();
    let h = group.spawn(|| {
        green::sleep(Duration::from_millis(5));
        3
    });
    h.link(logger(&log, "link"));
    h.link_value({
        let log = log.clone();
        move |_| log.borrow_mut().push("value")
    });
    h.link_error({
        let log = log.clone();
        move |_| log.borrow_mut().push("error")
    });
    h.unlink_all();
    assert!(!h.has_links());
    // The group's bookkeeping and a wait's registration are not links: they stay.
    let done = green::wait(std::slice::from_ref(&h), None, None);
    assert_eq!(done.len(), 1);
    assert!(group.is_empty(), "the group saw its member finish");
    assert!(log.borrow().is_empty());
    assert_eq!(h.join().unwrap(), 3);
}

#[test]
fn a_link_on_a_finished_greenlet_runs_at_once_and_cannot_be_withdrawn() {
    let h = green::spawn(|| 5);
    h.wait().unwrap();
    let seen = Rc::new(Cell::new(0));
    let s = seen.clone();
    let id = h.link_value(move |v| s.set(*v));
    assert_eq!(seen.get(), 5);
    assert!(!h.has_links());
    assert!(!h.unlink(id));
}

#[test]
fn a_link_may_withdraw_the_links_after_it() {
    // They run one at a time, in order (gevent pops them one by one too).
    let log: Log = Rc::default();
    let h = Rc::new(green::spawn(|| 0));
    let second: Rc<Cell<Option<green::LinkId>>> = Rc::default();
    let (h2, s2, l) = (Rc::downgrade(&h), second.clone(), log.clone());
    h.link(move |_| {
        let h = h2.upgrade().unwrap();
        assert!(h.has_links(), "the second one waits");
        l.borrow_mut().push(if h.unlink(s2.get().unwrap()) {
            "withdrew"
        } else {
            "too late"
        });
        assert!(!h.has_links());
    });
    second.set(Some(h.link(logger(&log, "second"))));
    h.link(logger(&log, "third"));
    h.wait().unwrap();
    assert_eq!(*log.borrow(), ["withdrew", "third"]);
}

#[test]
fn ids_are_unique_and_belong_to_their_greenlet() {
    let a = green::spawn(|| 1);
    let b = green::spawn(|| 2);
    let la = a.link(|_| ());
    let lb = b.link(|_| ());
    assert_ne!(la, lb);
    assert!(!a.unlink(lb), "b's link is not a's");
    assert!(a.has_links() && b.has_links());
    assert!(b.unlink(lb) && a.unlink(la));
    green::joinall([a, b]);
}
