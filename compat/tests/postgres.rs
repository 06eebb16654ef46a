//! The sync `postgres` client under the monkey patch. It runs a tokio current-thread
//! runtime inside each client, so each query is a foreign event loop (see
//! `green::monkey::event_loop`): by default the loops block the thread one after another,
//! never a panic; inside `event_loop` they still run one after another but the other
//! greenlets keep running; on the blocking pool (`green::run_blocking`, the documented
//! way for many concurrent clients) they run at once.
//!
//! Needs PostgreSQL on 127.0.0.1:5432 (user postgres, password "green"), which `.ci/run`
//! starts; elsewhere the tests say they skip when none answers.

mod support;

use std::time::{Duration, Instant};

const CONNECT: &str = "host=127.0.0.1 port=5432 user=postgres password=green dbname=postgres";

fn connect() -> postgres::Client {
    postgres::Client::connect(CONNECT, postgres::NoTls).unwrap()
}

fn server() -> bool {
    support::server_answers("PostgreSQL", 5432)
}

#[test]
fn a_hundred_pg_sleeps_on_the_blocking_pool_run_concurrently() {
    if !server() {
        return;
    }
    support::patch();
    // Twenty clients, connected on helper threads at once, shared through a queue.
    let clients = green::Queue::new();
    let made: Vec<_> = (0..20)
        .map(|_| green::spawn(|| green::run_blocking(connect)))
        .collect();
    for c in green::joinall(made) {
        clients.put(c.unwrap()).unwrap();
    }
    let ticker = support::ticker();
    let start = Instant::now();
    let queries: Vec<_> = (0..100)
        .map(|i: i32| {
            let q = clients.clone();
            green::spawn(move || {
                let mut c: postgres::Client = q.get().unwrap();
                let (c, v) = green::run_blocking(move || {
                    let row = c
                        .query_one("SELECT pg_sleep(0.1), $1::int4", &[&i])
                        .unwrap();
                    let v: i32 = row.get(1);
                    (c, v)
                });
                q.put(c).unwrap();
                v
            })
        })
        .collect();
    let got: Vec<i32> = support::join_all(queries);
    let took = start.elapsed();
    assert_eq!(got, (0..100).collect::<Vec<_>>());
    ticker.assert_smooth("100 pg_sleep(0.1) on the pool");
    // Serial: 10 s; 20 clients at once: 0.5 s.
    assert!(took < Duration::from_secs(4), "{took:?}");
}

#[test]
fn pg_sleeps_inside_event_loop_take_turns_while_others_run() {
    if !server() {
        return;
    }
    support::patch();
    // (Connected on helper threads: SCRAM authentication is seconds of computing in a
    // debug build, which would stall the hub as any computation does.)
    let made: Vec<_> = (0..10)
        .map(|_| green::spawn(|| green::run_blocking(connect)))
        .collect();
    let clients: Vec<postgres::Client> = green::joinall(made)
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let ticker = support::ticker();
    let start = Instant::now();
    let queries: Vec<_> = clients
        .into_iter()
        .zip(0..)
        .map(|(mut c, i): (postgres::Client, i32)| {
            green::spawn(move || {
                green::monkey::event_loop(|| {
                    let row = c
                        .query_one("SELECT pg_sleep(0.1), $1::int4", &[&i])
                        .unwrap();
                    let v = row.get::<_, i32>(1);
                    drop(c); // closing runs the client's loop too
                    v
                })
            })
        })
        .collect();
    let got: Vec<i32> = support::join_all(queries);
    let took = start.elapsed();
    assert_eq!(got, (0..10).collect::<Vec<_>>());
    ticker.assert_smooth("10 pg_sleep(0.1) inside event_loop");
    // One loop at a time.
    assert!(took >= Duration::from_millis(990), "{took:?}");
}

#[test]
fn pg_sleeps_without_the_scope_run_one_after_another_without_a_panic() {
    if !server() {
        return;
    }
    support::patch();
    let start = Instant::now();
    let queries: Vec<_> = (0..3)
        .map(|_| {
            green::spawn(|| {
                let mut c = connect();
                c.execute("SELECT pg_sleep(0.1)", &[]).unwrap();
            })
        })
        .collect();
    for r in green::joinall(queries) {
        r.unwrap();
    }
    assert!(start.elapsed() >= Duration::from_millis(295));
}
