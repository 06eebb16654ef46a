//! Greenlet-local storage: values per greenlet, dropped at exit.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use green::{green_local, spawn, yield_now};

thread_local! {
    static DROPS: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
}

struct Tracked(Cell<u32>);

impl Drop for Tracked {
    fn drop(&mut self) {
        DROPS.with(|d| d.borrow_mut().push(self.0.get()));
    }
}

green_local! {
    static VALUE: Tracked = Tracked(Cell::new(0));
    static OTHER: Cell<u32> = Cell::new(7);
}

#[test]
fn values_are_per_greenlet_and_dropped_at_exit() {
    let seen = Rc::new(RefCell::new(Vec::new()));
    let hs: Vec<_> = (1..=3)
        .map(|n| {
            let seen = seen.clone();
            spawn(move || {
                VALUE.with(|v| v.0.set(n));
                yield_now(); // the others set theirs
                VALUE.with(|v| seen.borrow_mut().push(v.0.get()));
                OTHER.with(|o| o.get())
            })
        })
        .collect();
    let others: Vec<u32> = green::joinall(hs).into_iter().map(Result::unwrap).collect();
    assert_eq!(others, [7, 7, 7]);
    assert_eq!(*seen.borrow(), [1, 2, 3]);
    let mut drops = DROPS.with(|d| d.borrow().clone());
    drops.sort();
    assert_eq!(
        drops,
        [1, 2, 3],
        "each greenlet's value dropped when it finished"
    );
    // Main has its own values (a `Tracked` in main would be dropped at thread exit,
    // after `DROPS` may be gone, so check with the plain cell).
    OTHER.with(|o| o.set(1));
    assert_eq!(spawn(|| OTHER.with(|o| o.get())).join().unwrap(), 7);
    assert_eq!(OTHER.with(|o| o.get()), 1);
}

#[test]
fn killed_greenlet_drops_its_values() {
    green_local!(static K: Rc<Cell<bool>> = Rc::new(Cell::new(false)));
    let probe: Rc<RefCell<Option<std::rc::Weak<Cell<bool>>>>> = Rc::default();
    let p = probe.clone();
    let h = spawn(move || {
        K.with(|k| *p.borrow_mut() = Some(Rc::downgrade(k)));
        green::sleep(std::time::Duration::from_secs(10));
    });
    yield_now();
    assert!(probe.borrow().as_ref().unwrap().upgrade().is_some());
    h.kill();
    assert!(probe.borrow().as_ref().unwrap().upgrade().is_none());
}
