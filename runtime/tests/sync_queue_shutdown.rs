//! Shutting a queue down at once, and counting unfinished tasks (Python 3.13's
//! `Queue.shutdown(immediate=True)`, `unfinished_tasks`).

use green::{PriorityQueue, Queue, QueueError, spawn, yield_now};

#[test]
fn shutdown_returns_the_queued_items_in_get_order() {
    let q = Queue::new();
    let p = PriorityQueue::new();
    for i in [3, 1, 2] {
        q.put(i).unwrap();
        p.put(i).unwrap();
    }
    assert_eq!(q.shutdown(), [3, 1, 2]);
    assert_eq!(p.shutdown(), [1, 2, 3]);
    assert!(q.is_empty() && q.is_closed());
    assert_eq!(q.get(), Err(QueueError::Closed));
    assert_eq!(q.try_peek(), Err(QueueError::Closed));
    let e = q.put(9).unwrap_err();
    assert_eq!((e.kind(), e.into_inner()), (QueueError::Closed, 9));
    assert!(q.shutdown().is_empty(), "a second shutdown finds nothing");
}

#[test]
fn shutdown_wakes_every_waiter_with_closed() {
    let empty: Queue<i32> = Queue::new();
    let rx = empty.clone();
    let getter = spawn(move || rx.get());
    let rx = empty.clone();
    let peeker = spawn(move || rx.peek());
    let full = Queue::bounded(1);
    full.put(0).unwrap();
    let tx = full.clone();
    let putter = spawn(move || tx.put(1).map_err(|e| (e.kind(), e.into_inner())));
    yield_now();
    assert_eq!((empty.getters(), full.putters()), (1, 1));
    assert!(empty.shutdown().is_empty());
    assert_eq!(full.shutdown(), [0]);
    assert_eq!(getter.join().unwrap(), Err(QueueError::Closed));
    assert_eq!(peeker.join().unwrap(), Err(QueueError::Closed));
    assert_eq!(putter.join().unwrap(), Err((QueueError::Closed, 1)));
    assert_eq!((empty.getters(), full.putters()), (0, 0));
}

#[test]
fn close_leaves_items_to_drain_and_shutdown_does_not() {
    let closed = Queue::new();
    let shut = Queue::new();
    for q in [&closed, &shut] {
        q.put(1).unwrap();
        q.put(2).unwrap();
    }
    closed.close();
    assert_eq!(shut.shutdown(), [1, 2]);
    assert_eq!(closed.get(), Ok(1));
    assert_eq!(shut.get(), Err(QueueError::Closed));
}

#[test]
fn unfinished_tasks_counts_puts_until_task_done() {
    let q = Queue::new();
    assert_eq!(q.unfinished_tasks(), 0);
    for i in 0..3 {
        q.put(i).unwrap();
    }
    assert_eq!(q.unfinished_tasks(), 3);
    q.get().unwrap();
    assert_eq!(q.unfinished_tasks(), 3, "a get is not a task_done");
    q.task_done().unwrap();
    assert_eq!(q.unfinished_tasks(), 2);
    // Items handed straight to a getter count too.
    let q2: Queue<i32> = Queue::new();
    let rx = q2.clone();
    let getter = spawn(move || rx.get());
    yield_now();
    q2.put(5).unwrap();
    assert_eq!(getter.join().unwrap(), Ok(5));
    assert_eq!(q2.unfinished_tasks(), 1);
}

#[test]
fn shutdown_counts_the_items_it_takes_out_as_done() {
    let q = Queue::new();
    for i in 0..3 {
        q.put(i).unwrap();
    }
    assert_eq!(q.get(), Ok(0)); // taken: still unfinished
    let joiner_q = q.clone();
    let joiner = spawn(move || joiner_q.join());
    yield_now();
    assert_eq!(q.shutdown(), [1, 2]);
    assert_eq!(q.unfinished_tasks(), 1);
    yield_now();
    assert!(!joiner.is_finished(), "the item taken is not done yet");
    q.task_done().unwrap();
    assert_eq!(joiner.join().unwrap(), Ok(()));
    assert_eq!(q.unfinished_tasks(), 0);
}

#[test]
fn shutdown_of_untaken_items_releases_join() {
    let q = Queue::new();
    q.put("a").unwrap();
    let joiner_q = q.clone();
    let joiner = spawn(move || joiner_q.join());
    yield_now();
    assert_eq!(q.shutdown(), ["a"]);
    assert_eq!(joiner.join().unwrap(), Ok(()));
    assert_eq!(q.join(), Ok(()), "nothing is unfinished");
}
