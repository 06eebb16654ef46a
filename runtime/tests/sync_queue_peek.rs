//! Queue peeks: gevent's `Queue.peek` — the next item, left in the queue.

use std::time::{Duration, Instant};

use green::{Channel, LifoQueue, PriorityQueue, Queue, QueueError, spawn, yield_now};

const MS: Duration = Duration::from_millis(1);

#[test]
fn peek_shows_what_get_takes_next_and_leaves_it() {
    let q = Queue::new();
    let l = LifoQueue::new();
    let p = PriorityQueue::new();
    for i in [3, 1, 2] {
        q.put(i).unwrap();
        l.put(i).unwrap();
        p.put(i).unwrap();
    }
    assert_eq!((q.peek(), l.peek(), p.peek()), (Ok(3), Ok(2), Ok(1)));
    assert_eq!((q.len(), l.len(), p.len()), (3, 3, 3));
    assert_eq!((q.get(), l.get(), p.get()), (Ok(3), Ok(2), Ok(1)));
    assert_eq!(q.try_peek(), Ok(1));
}

#[test]
fn every_waiting_peeker_wakes_on_one_put() {
    let q: Queue<i32> = Queue::new();
    let peekers: Vec<_> = (0..3)
        .map(|_| {
            let rx = q.clone();
            spawn(move || rx.peek())
        })
        .collect();
    yield_now();
    assert!(peekers.iter().all(|h| !h.is_finished()));
    q.put(7).unwrap();
    for h in peekers {
        assert_eq!(h.join().unwrap(), Ok(7));
    }
    assert_eq!(q.len(), 1);
}

#[test]
fn an_item_handed_to_a_getter_is_not_peeked() {
    let q: Queue<i32> = Queue::new();
    let rx = q.clone();
    let getter = spawn(move || rx.get());
    let rx = q.clone();
    let peeker = spawn(move || rx.peek());
    yield_now();
    q.put(1).unwrap(); // to the getter
    yield_now();
    assert_eq!(getter.join().unwrap(), Ok(1));
    assert!(
        !peeker.is_finished(),
        "the peeker saw an item it cannot get"
    );
    q.put(2).unwrap();
    assert_eq!(peeker.join().unwrap(), Ok(2));
    assert_eq!(q.get(), Ok(2));
}

#[test]
fn a_bounded_queue_peeks_an_admitted_putters_item() {
    let q = Queue::bounded(1);
    q.put(0).unwrap();
    let tx = q.clone();
    let putter = spawn(move || tx.put(1));
    yield_now();
    let rx = q.clone();
    let peeker = spawn(move || {
        let first = rx.get().unwrap();
        (first, rx.peek())
    });
    assert_eq!(peeker.join().unwrap(), (0, Ok(1)));
    putter.join().unwrap().unwrap();
    assert_eq!(q.len(), 1);
}

#[test]
fn a_channel_peeks_the_first_waiting_putters_item() {
    let ch: Channel<&str> = Channel::new();
    let rx = ch.clone();
    let peeker = spawn(move || rx.peek());
    yield_now();
    let tx = ch.clone();
    let putter = spawn(move || tx.put("a"));
    assert_eq!(peeker.join().unwrap(), Ok("a"));
    assert_eq!(ch.putters(), 1, "peeking does not take the item");
    assert_eq!(ch.try_peek(), Ok("a"));
    assert_eq!(ch.get(), Ok("a"));
    putter.join().unwrap().unwrap();
    assert_eq!(ch.try_peek(), Err(QueueError::Empty));
}

#[test]
fn peek_timeout_gives_up_then_a_put_still_works() {
    let q: Queue<i32> = Queue::new();
    let t = Instant::now();
    assert_eq!(q.peek_timeout(5 * MS), Err(QueueError::TimedOut));
    assert!(t.elapsed() >= 5 * MS);
    assert_eq!(q.peek_timeout(Duration::ZERO), Err(QueueError::TimedOut));
    q.put(4).unwrap();
    assert_eq!(q.peek_timeout(Duration::ZERO), Ok(4));
    assert_eq!(q.get(), Ok(4));
}

#[test]
fn a_killed_peeker_leaves_the_others_waiting() {
    let q: Queue<i32> = Queue::new();
    let rx = q.clone();
    let killed = spawn(move || rx.peek());
    let rx = q.clone();
    let kept = spawn(move || rx.peek());
    yield_now();
    killed.kill();
    assert!(killed.join().unwrap_err().is_killed());
    q.put(3).unwrap();
    assert_eq!(kept.join().unwrap(), Ok(3));
}

#[test]
fn close_wakes_peekers_but_leaves_queued_items_peekable() {
    let q: Queue<i32> = Queue::new();
    let rx = q.clone();
    let peeker = spawn(move || rx.peek());
    yield_now();
    q.close();
    assert_eq!(peeker.join().unwrap(), Err(QueueError::Closed));
    let q = Queue::new();
    q.put(1).unwrap();
    q.close();
    assert_eq!(q.peek(), Ok(1));
    assert_eq!(q.get(), Ok(1));
    assert_eq!(q.peek(), Err(QueueError::Closed));
}

#[test]
fn peek_in_main_with_nothing_to_wait_for() {
    let q: Queue<i32> = Queue::new();
    assert!(matches!(q.peek(), Err(QueueError::Blocked(_))));
}
