//! Futures inside greenlets: `green::block_on` with tokio's channels (which need no
//! reactor), woken from other threads and other greenlets; a greenlet awaited from a
//! tokio runtime running inside `event_loop`.

mod support;

use std::time::{Duration, Instant};

#[test]
fn a_oneshot_sent_from_a_thread_wakes_only_its_greenlet() {
    support::patch();
    let ticker = support::ticker();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        tx.send("from a thread").unwrap();
    });
    let start = Instant::now();
    assert_eq!(green::block_on(rx).unwrap(), "from a thread");
    assert!(start.elapsed() >= Duration::from_millis(190));
    ticker.assert_smooth("a oneshot awaited for 200 ms");
    t.join().unwrap();
}

#[test]
fn greenlets_talk_through_a_tokio_channel() {
    support::patch();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<u32>(2);
    let producer = green::spawn(move || {
        for i in 0..20 {
            green::block_on(tx.send(i)).unwrap();
            if i % 5 == 0 {
                green::sleep(Duration::from_millis(2));
            }
        }
    });
    let consumer = green::spawn(move || {
        let mut got = Vec::new();
        while let Some(v) = green::block_on(rx.recv()) {
            got.push(v);
        }
        got
    });
    producer.join().unwrap();
    assert_eq!(consumer.join().unwrap(), (0..20).collect::<Vec<_>>());
}

#[test]
fn a_notify_from_another_greenlet() {
    support::patch();
    let n = std::rc::Rc::new(tokio::sync::Notify::new());
    let m = n.clone();
    let waiter = green::spawn(move || green::block_on(m.notified()));
    green::sleep(Duration::from_millis(20));
    n.notify_one();
    waiter.join().unwrap();
}

#[test]
fn a_tokio_runtime_awaits_a_greenlet() {
    support::patch();
    let worker = green::spawn(|| {
        green::sleep(Duration::from_millis(100));
        6 * 7
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let start = Instant::now();
    // The greenlet runs while the runtime waits (parked, inside the scope); its end
    // wakes the awaiting task.
    let v = green::monkey::event_loop(|| rt.block_on(async move { worker.await }));
    assert_eq!(v.unwrap(), 42);
    assert!(start.elapsed() >= Duration::from_millis(95));
}

#[test]
fn a_tokio_loop_sees_a_wake_from_another_greenlet() {
    support::patch();
    // Tokio takes a wake on its own thread for one from the runtime itself, which it
    // assumes is running: the loop must still notice it.
    let (tx, rx) = tokio::sync::oneshot::channel();
    green::spawn(move || {
        green::sleep(Duration::from_millis(50));
        tx.send(7).unwrap();
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let start = Instant::now();
    let v = green::monkey::event_loop(|| rt.block_on(async move { rx.await.unwrap() }));
    assert_eq!(v, 7);
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
}
