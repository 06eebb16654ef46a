//! parking_lot keeps its parking state in one record per OS thread: greenlets cannot
//! share it, so under the patch its waits block the thread as before (never parking
//! two greenlets through one record), with a warning that names what to use instead.

#[path = "../../tests/support/watchdog.rs"]
mod watchdog;

mod support;

use std::sync::Arc;
use std::thread;
use std::time::Duration;

#[test]
fn a_contended_parking_lot_mutex_blocks_the_thread_with_a_warning() {
    let _dog = watchdog::arm();
    support::setup();
    let m = Arc::new(parking_lot::Mutex::new(0));
    let m2 = m.clone();
    let (locked, wait_locked) = std::sync::mpsc::channel();
    let holder = thread::spawn(move || {
        let mut g = m2.lock();
        locked.send(()).unwrap();
        thread::sleep(Duration::from_millis(100));
        *g += 1;
    });
    wait_locked.recv().unwrap();
    let got = green::spawn(move || {
        let mut g = m.lock(); // waits on its thread record: blocks the thread
        *g += 1;
        *g
    })
    .join()
    .unwrap();
    holder.join().unwrap();
    assert_eq!(got, 2);
    assert!(support::logged(&[
        "thread-local storage",
        "parking_lot",
        "green::Lock"
    ]));
}

#[test]
fn uncontended_parking_lot_locks_work_in_greenlets() {
    let _dog = watchdog::arm();
    support::setup();
    let m = std::rc::Rc::new(parking_lot::Mutex::new(Vec::new()));
    let hs: Vec<_> = (0..10)
        .map(|i| {
            let m = m.clone();
            green::spawn(move || {
                m.lock().push(i);
                green::yield_now();
                m.lock().push(i);
            })
        })
        .collect();
    for r in green::joinall(hs) {
        r.unwrap();
    }
    assert_eq!(m.lock().len(), 20);
}
