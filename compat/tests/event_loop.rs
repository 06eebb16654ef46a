//! A foreign event loop inside greenlets: tokio's current-thread `block_on` inside
//! `green::monkey::event_loop` parks only its greenlet; two greenlets entering such a
//! loop at once take turns instead of panicking; without the scope the loops still run
//! one after another (the thread blocks), never a panic.

mod support;

use std::cell::Cell;
use std::io::{Read, Write};
use std::rc::Rc;
use std::time::{Duration, Instant};

/// `rt.block_on` of a tokio sleep (made inside the runtime, as tokio requires).
fn sleep_in(rt: &tokio::runtime::Runtime, ms: u64) {
    rt.block_on(async move { tokio::time::sleep(Duration::from_millis(ms)).await });
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn a_tokio_sleep_in_event_loop_lets_fifty_greenlets_run() {
    support::patch();
    let ticker = support::ticker();
    let ran = Rc::new(Cell::new(0u32));
    let stop = Rc::new(Cell::new(false));
    let others: Vec<_> = (0..50)
        .map(|_| {
            let (ran, stop) = (ran.clone(), stop.clone());
            green::spawn(move || {
                while !stop.get() {
                    green::sleep(Duration::from_millis(5));
                    ran.set(ran.get() + 1);
                }
            })
        })
        .collect();
    let sleeper = green::spawn(|| {
        let rt = runtime();
        let start = Instant::now();
        green::monkey::event_loop(|| sleep_in(&rt, 200));
        start.elapsed()
    });
    let slept = sleeper.join().unwrap();
    let during = ran.get();
    stop.set(true);
    green::joinall(others);
    ticker.assert_smooth("a tokio sleep of 200 ms");
    assert!(slept >= Duration::from_millis(195), "{slept:?}");
    // 50 greenlets waking every 5 ms for 200 ms: about 2000 wakes; serial would be 0.
    assert!(during >= 500, "the others woke {during} times meanwhile");
}

#[test]
fn two_greenlets_entering_block_on_at_once_take_turns() {
    support::patch();
    let ticker = support::ticker();
    let start = Instant::now();
    let loops: Vec<_> = (0..2)
        .map(|i| {
            green::spawn(move || {
                let rt = runtime();
                green::monkey::event_loop(|| {
                    rt.block_on(async move {
                        tokio::time::sleep(Duration::from_millis(150)).await;
                        i
                    })
                })
            })
        })
        .collect();
    let got: Vec<i32> = green::joinall(loops)
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(got, [0, 1]);
    let took = start.elapsed();
    ticker.assert_smooth("two tokio loops");
    // One loop after the other.
    assert!(took >= Duration::from_millis(290), "{took:?}");
}

#[test]
fn without_the_scope_loops_run_one_after_another_without_a_panic() {
    support::patch();
    let start = Instant::now();
    let loops: Vec<_> = (0..2)
        .map(|_| green::spawn(|| sleep_in(&runtime(), 100)))
        .collect();
    for r in green::joinall(loops) {
        r.unwrap();
    }
    assert!(start.elapsed() >= Duration::from_millis(195));
}

#[test]
fn a_kill_inside_the_scope_takes_effect_when_the_loop_returns() {
    support::patch();
    let start = Instant::now();
    let h = green::spawn(|| {
        let rt = runtime();
        green::monkey::event_loop(|| sleep_in(&rt, 200));
        "not reached"
    });
    green::sleep(Duration::from_millis(50));
    h.kill();
    assert!(h.join().unwrap_err().is_killed());
    assert!(
        start.elapsed() >= Duration::from_millis(195),
        "{:?}",
        start.elapsed()
    );
    // The scope was left: another greenlet can enter at once.
    let next = green::spawn(|| green::monkey::event_loop(|| runtime().block_on(async { 5 })));
    assert_eq!(next.join().unwrap(), 5);
}

#[test]
fn a_tokio_client_talks_to_a_std_server_greenlet_of_the_same_thread() {
    support::patch();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = green::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut buf = [0u8; 4];
        conn.read_exact(&mut buf).unwrap();
        buf.make_ascii_uppercase();
        conn.write_all(&buf).unwrap();
    });
    let client = green::spawn(move || {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let rt = runtime();
        green::monkey::event_loop(|| {
            rt.block_on(async move {
                let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
                s.write_all(b"ping").await.unwrap();
                let mut buf = [0u8; 4];
                s.read_exact(&mut buf).await.unwrap();
                buf
            })
        })
    });
    assert_eq!(&client.join().unwrap(), b"PING");
    server.join().unwrap();
}
