//! The seeds' producer/consumer model (生产者消费者模型), with greenlets and a
//! `green::Queue` instead of processes and a `JoinableQueue`: one producer makes ten
//! buns (包子), three consumers eat them; the producer waits with `join` until every
//! bun has been marked done.
//!
//! Run with `cargo run --example producer_consumer`.

use std::time::Duration;

use green::Queue;

fn consumer(name: &'static str, q: Queue<String>) {
    // Like the seeds' daemon consumers: loop until the queue is closed.
    while let Ok(bun) = q.get() {
        green::sleep(Duration::from_millis(30));
        println!("\x1b[45m{name}拿到了 {bun}\x1b[0m");
        q.task_done().expect("one task_done per get");
    }
}

fn producer(seq: impl Iterator<Item = String>, q: &Queue<String>) {
    for bun in seq {
        green::sleep(Duration::from_millis(10));
        println!("\x1b[46m生产者做好了 {bun}\x1b[0m");
        q.put(bun).expect("the queue is open");
    }
    // Wait until every bun has been eaten (task_done for each).
    q.join().expect("consumers are running");
}

fn main() {
    let q = Queue::new();
    let consumers: Vec<_> = ["消费者1", "消费者2", "消费者3"]
        .into_iter()
        .map(|name| {
            let q = q.clone();
            green::spawn(move || consumer(name, q))
        })
        .collect();
    producer((0..10).map(|i| format!("包子{i}")), &q);
    println!("主线程");
    // The seeds' consumers are daemons; ours end when the queue closes.
    q.close();
    for c in consumers {
        c.join().expect("consumer finished");
    }
}
