//! Queues: gevent's test__queue.py behaviours.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use green::{Channel, LifoQueue, PriorityQueue, Queue, QueueError, spawn, yield_now};

const MS: Duration = Duration::from_millis(1);

#[test]
fn fifo_lifo_priority_order() {
    let q = Queue::new();
    let l = LifoQueue::new();
    let p = PriorityQueue::new();
    for i in [3, 1, 2] {
        q.put(i).unwrap();
        l.put(i).unwrap();
        p.put(i).unwrap();
    }
    let drain =
        |f: &dyn Fn() -> Result<i32, QueueError>| (0..3).map(|_| f().unwrap()).collect::<Vec<_>>();
    assert_eq!(drain(&|| q.get()), [3, 1, 2]);
    assert_eq!(drain(&|| l.get()), [2, 1, 3]);
    assert_eq!(drain(&|| p.get()), [1, 2, 3]);
}

#[test]
fn bounded_putter_blocks_until_one_get() {
    let q = Queue::bounded(2);
    let log = Rc::new(RefCell::new(Vec::new()));
    let (tx, l) = (q.clone(), log.clone());
    let putter = spawn(move || {
        for i in 0..3 {
            tx.put(i).unwrap();
            l.borrow_mut().push(format!("put {i}"));
        }
    });
    yield_now();
    yield_now();
    assert_eq!(*log.borrow(), ["put 0", "put 1"], "blocked after capacity");
    assert!(q.is_full());
    assert_eq!(q.putters(), 1);
    assert_eq!(q.get(), Ok(0));
    putter.join().unwrap();
    assert_eq!(*log.borrow(), ["put 0", "put 1", "put 2"]);
    assert_eq!(q.len(), 2);
    assert_eq!(q.try_put(9).unwrap_err().kind(), QueueError::Full);
}

#[test]
fn put_timeout_gives_item_back() {
    let q = Queue::bounded(1);
    q.put("a").unwrap();
    let err = q.put_timeout("b", 5 * MS).unwrap_err();
    assert_eq!(err.kind(), QueueError::TimedOut);
    assert_eq!(err.into_inner(), "b");
    assert_eq!(q.putters(), 0);
    assert_eq!(q.len(), 1);
}

#[test]
fn timed_out_getter_does_not_swallow_next_item() {
    let q: Queue<i32> = Queue::new();
    let rx = q.clone();
    let quitter = spawn(move || rx.get_timeout(5 * MS));
    let rx = q.clone();
    let patient = spawn(move || rx.get());
    yield_now();
    assert_eq!(q.getters(), 2);
    assert_eq!(quitter.join().unwrap(), Err(QueueError::TimedOut));
    q.put(1).unwrap();
    assert_eq!(patient.join().unwrap(), Ok(1));
}

#[test]
fn killed_getter_does_not_swallow_next_item() {
    let q: Queue<i32> = Queue::new();
    let rx = q.clone();
    let victim = spawn(move || rx.get());
    let rx = q.clone();
    let other = spawn(move || rx.get());
    yield_now();
    victim.kill();
    assert_eq!(q.getters(), 1);
    q.put(1).unwrap();
    assert_eq!(other.join().unwrap(), Ok(1));
}

#[test]
fn getter_killed_after_handoff_passes_item_on() {
    let q: Queue<i32> = Queue::new();
    let rx = q.clone();
    let victim = spawn(move || rx.get());
    let rx = q.clone();
    let other = spawn(move || rx.get());
    yield_now();
    q.put(1).unwrap(); // handed to `victim`, which has not run yet
    victim.kill_nowait(); // ... and is killed before it runs
    assert!(victim.join().unwrap_err().is_killed());
    assert_eq!(other.join().unwrap(), Ok(1), "the item was lost");
}

#[test]
fn getters_served_fifo() {
    let q = Queue::new();
    let hs: Vec<_> = (0..5)
        .map(|_| {
            let rx = q.clone();
            spawn(move || rx.get().unwrap())
        })
        .collect();
    yield_now();
    for i in 0..5 {
        q.put(i).unwrap();
    }
    let got: Vec<i32> = green::joinall(hs).into_iter().map(Result::unwrap).collect();
    assert_eq!(got, [0, 1, 2, 3, 4]);
}

#[test]
fn channel_rendezvous_order() {
    let ch = Channel::new();
    let log = Rc::new(RefCell::new(Vec::new()));
    let (tx, l) = (ch.clone(), log.clone());
    let sender = spawn(move || {
        for i in 0..2 {
            l.borrow_mut().push(format!("putting {i}"));
            tx.put(i).unwrap();
            l.borrow_mut().push(format!("put {i}"));
        }
    });
    yield_now();
    assert_eq!(*log.borrow(), ["putting 0"], "put waits for a getter");
    log.borrow_mut().push("get".into());
    assert_eq!(ch.get(), Ok(0));
    log.borrow_mut().push("got 0".into());
    assert_eq!(ch.get(), Ok(1));
    log.borrow_mut().push("got 1".into());
    sender.join().unwrap();
    assert_eq!(
        *log.borrow(),
        [
            "putting 0",
            "get",
            "got 0",
            "put 0",
            "putting 1",
            "got 1",
            "put 1"
        ]
    );
    assert_eq!(ch.try_put(5).unwrap_err().kind(), QueueError::Full);
    assert!(ch.is_empty());
}

#[test]
fn close_wakes_waiters_with_error() {
    let q: Queue<i32> = Queue::new();
    let getters: Vec<_> = (0..3)
        .map(|_| {
            let rx = q.clone();
            spawn(move || rx.get())
        })
        .collect();
    let full = Queue::bounded(1);
    full.put(0).unwrap();
    let tx = full.clone();
    let putter = spawn(move || tx.put(1).map_err(|e| (e.kind(), e.into_inner())));
    yield_now();
    q.close();
    full.close();
    for g in getters {
        assert_eq!(g.join().unwrap(), Err(QueueError::Closed));
    }
    assert_eq!(putter.join().unwrap(), Err((QueueError::Closed, 1)));
    assert_eq!(q.put(5).unwrap_err().kind(), QueueError::Closed);
    // Items already queued can still be drained.
    assert_eq!(full.get(), Ok(0));
    assert_eq!(full.get(), Err(QueueError::Closed));
}

#[test]
fn task_done_and_join() {
    let q = Queue::new();
    for i in 0..5 {
        q.put(i).unwrap();
    }
    let done = Rc::new(RefCell::new(Vec::new()));
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let (rx, d) = (q.clone(), done.clone());
            spawn(move || {
                while let Ok(i) = rx.get() {
                    green::sleep(MS);
                    d.borrow_mut().push(i);
                    rx.task_done().unwrap();
                }
            })
        })
        .collect();
    q.join().unwrap();
    assert_eq!(done.borrow().len(), 5);
    assert_eq!(q.task_done(), Err(QueueError::NoUnfinishedTasks));
    q.close();
    green::joinall(workers);
}

#[test]
fn get_in_main_with_nothing_to_wait_for() {
    let q: Queue<i32> = Queue::new();
    assert!(matches!(q.get(), Err(QueueError::Blocked(_))));
    assert_eq!(q.getters(), 0);
}

#[test]
fn zero_timeouts_give_up_with_timed_out() {
    let q: Queue<i32> = Queue::new();
    assert_eq!(q.get_timeout(Duration::ZERO), Err(QueueError::TimedOut));
    let full = Queue::bounded(1);
    full.put(1).unwrap();
    let e = full.put_timeout(2, Duration::ZERO).unwrap_err();
    assert_eq!(e.kind(), QueueError::TimedOut);
    // An item that is there is still returned, and room is still used, at once.
    assert_eq!(full.get_timeout(Duration::ZERO), Ok(1));
    full.put_timeout(3, Duration::ZERO).unwrap();
}
