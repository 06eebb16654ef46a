//! The seeds' producer/consumer model (生产者消费者模型), with greenlets and a
//! `green::Queue` instead of processes and a `JoinableQueue`: one producer makes ten
//! buns (包子), three consumers eat them; the producer waits with `join` until every
//! bun has been marked done.
//!
//! Run with `cargo run --example producer_consumer`.

#[path = "shared/mod.rs"]
mod shared;

use std::io::IsTerminal;
use std::time::Duration;

use green::Queue;

const USAGE: &str = "\
usage: producer_consumer

One producer makes ten buns, three consumers eat them, through a green::Queue; the
producer waits until every bun was eaten. Coloured when stdout is a terminal.
";

/// `text` in the background colour `code` (an ANSI SGR number), as the seeds print it,
/// when stdout is a terminal; plain otherwise (a pipe or a file gets no escape codes).
fn coloured(code: u8, text: &str) -> String {
    if std::io::stdout().is_terminal() {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

fn consumer(name: &'static str, q: Queue<String>) {
    // Like the seeds' daemon consumers: loop until the queue is closed.
    while let Ok(bun) = q.get() {
        green::sleep(Duration::from_millis(30));
        println!("{}", coloured(45, &format!("{name}拿到了 {bun}")));
        q.task_done().expect("one task_done per get");
    }
}

fn producer(seq: impl Iterator<Item = String>, q: &Queue<String>) {
    for bun in seq {
        green::sleep(Duration::from_millis(10));
        println!("{}", coloured(46, &format!("生产者做好了 {bun}")));
        q.put(bun).expect("the queue is open");
    }
    // Wait until every bun has been eaten (task_done for each).
    q.join().expect("consumers are running");
}

fn main() {
    shared::cli::Args::none(USAGE);
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
