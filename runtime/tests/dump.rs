//! The greenlet dump (`format_run_info`): states, park labels, parents, names and
//! where each greenlet was spawned.

use std::cell::RefCell;
use std::net::TcpListener;
use std::rc::Rc;
use std::time::Duration;

use green::{Builder, Event, Greenlet, Lock, Queue, Value, getcurrent};

/// The dump's line for the greenlet `id`.
fn line_of(dump: &str, id: u64) -> String {
    let prefix = format!("greenlet {id}");
    dump.lines()
        .map(str::trim)
        .find(|l| l.starts_with(&prefix) && l[prefix.len()..].starts_with([' ', ':']))
        .unwrap_or_else(|| panic!("no line for greenlet {id} in:\n{dump}"))
        .to_owned()
}

#[test]
fn parked_greenlets_say_what_they_wait_for() {
    let event = Event::new();
    let lock = Lock::new();
    let queue: Queue<i32> = Queue::new();
    let held = lock.acquire().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (e, l, q) = (event.clone(), lock.clone(), queue.clone());
    let sleeper = Builder::new()
        .name("sleeper")
        .spawn(|| green::sleep(Duration::from_secs(30)))
        .unwrap();
    let waiter = green::spawn(move || e.wait());
    let locker = green::spawn(move || drop(l.acquire()));
    let getter = green::spawn(move || q.get());
    let reader = green::spawn(move || {
        let mut s = green::net::TcpStream::connect(addr).unwrap();
        let mut b = [0u8; 1];
        std::io::Read::read(&mut s, &mut b).unwrap_or(0)
    });
    green::sleep(Duration::from_millis(20)); // every one parks (the connection waits)
    let (peer, _) = listener.accept().unwrap();
    let here = line!() + 1;
    let joiner = green::spawn(|| green::sleep(Duration::from_secs(30)));
    green::yield_now();
    let dump = green::format_run_info();
    let sleeper_line = line_of(&dump, sleeper.greenlet().id());
    assert!(
        sleeper_line.contains("\"sleeper\": parked on sleep"),
        "{dump}"
    );
    let hub = green::getcurrent().parent().map(|g| g.id());
    assert_eq!(hub, None, "main has no parent");
    assert!(
        line_of(&dump, waiter.greenlet().id()).contains("parked on event"),
        "{dump}"
    );
    assert!(
        line_of(&dump, locker.greenlet().id()).contains("parked on lock/semaphore"),
        "{dump}"
    );
    assert!(
        line_of(&dump, getter.greenlet().id()).contains("parked on queue get"),
        "{dump}"
    );
    let reader_line = line_of(&dump, reader.greenlet().id());
    assert!(reader_line.contains("parked on IO read, fd "), "{dump}");
    let joiner_line = line_of(&dump, joiner.greenlet().id());
    assert!(
        joiner_line.contains(&format!("spawned at {}:{here}:", file!())),
        "{joiner_line}"
    );
    assert!(
        line_of(&dump, getcurrent().id()).contains("\"main\": running"),
        "{dump}"
    );
    // Clean up: wake everything.
    drop(peer);
    event.set();
    drop(held);
    queue.put(1).unwrap();
    sleeper.kill();
    joiner.kill();
    assert!(waiter.join().unwrap().unwrap());
    locker.join().unwrap();
    getter.join().unwrap().unwrap();
    assert_eq!(reader.join().unwrap(), 0);
}

#[test]
fn join_names_the_joined_greenlet_and_parents_show() {
    let target = green::spawn(|| green::sleep(Duration::from_secs(30)));
    let tid = target.greenlet().id();
    let t = target.greenlet().clone();
    let joiner = green::spawn(move || {
        // Joins through a second handle of the same greenlet: wait until it dies.
        while !t.dead() {
            green::sleep(Duration::from_millis(1));
        }
    });
    green::yield_now();
    let dump = green::format_run_info();
    let tl = line_of(&dump, tid);
    assert!(tl.contains("parked on sleep"), "{dump}");
    let hub_id = target.greenlet().parent().unwrap().id();
    assert!(tl.contains(&format!("parent {hub_id}")), "{dump}");
    assert!(
        line_of(&dump, hub_id).contains("\"hub\": waiting"),
        "{dump}"
    );
    // Main joining: main's own line says so.
    let main_dump: Rc<RefCell<String>> = Rc::default();
    let md = main_dump.clone();
    let peeker = green::spawn(move || *md.borrow_mut() = green::format_run_info());
    let p = peeker.greenlet().clone();
    let _ = peeker.join_timeout(Duration::from_secs(5));
    let main_line = line_of(&main_dump.borrow(), getcurrent().id());
    assert!(
        main_line.contains(&format!("parked on join, greenlet {}", p.id())),
        "{}",
        main_dump.borrow()
    );
    target.kill();
    joiner.join().unwrap();
}

#[test]
fn explicit_greenlets_show_suspended_and_not_started() {
    let main = getcurrent();
    let g = Greenlet::new(move |_: Value| {
        main.switch(());
    });
    let fresh = Greenlet::new(|_: Value| ());
    g.switch(());
    let dump = green::format_run_info();
    assert!(
        line_of(&dump, g.id()).contains(": suspended (switched away)"),
        "{dump}"
    );
    assert!(
        line_of(&dump, fresh.id()).contains(": not started"),
        "{dump}"
    );
    assert!(
        line_of(&dump, g.id()).contains(&format!("parent {}", getcurrent().id())),
        "{dump}"
    );
    let _ = g.throw();
    let after = green::format_run_info();
    assert!(
        !after.contains(&format!("greenlet {} ", g.id())),
        "dead: not listed\n{after}"
    );
}

#[test]
fn a_yielding_greenlet_is_ready() {
    let stop = Rc::new(std::cell::Cell::new(false));
    let s = stop.clone();
    let spinner = green::spawn(move || {
        while !s.get() {
            green::yield_now();
        }
    });
    green::yield_now();
    let dump = green::format_run_info();
    let l = line_of(&dump, spinner.greenlet().id());
    assert!(
        l.contains(": ready (yielded)") || l.contains(": ready"),
        "{dump}"
    );
    stop.set(true);
    spinner.join().unwrap();
}

#[test]
fn the_header_counts_the_listed_greenlets() {
    let dump = green::format_run_info();
    let first = dump.lines().next().unwrap();
    let n: usize = first
        .strip_prefix("green: ")
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{first}"));
    assert_eq!(n, dump.lines().count() - 1, "{dump}");
}

#[test]
fn greenlets_spawned_through_a_pool_show_the_callers_location() {
    let pool = green::Pool::new(2);
    let group = green::Group::new();
    let sleep = || green::sleep(Duration::from_secs(30));
    let (a, la) = (pool.spawn(sleep), line!());
    let (b, lb) = (pool.try_spawn(sleep).unwrap(), line!());
    let (c, lc) = (group.spawn(sleep), line!());
    green::yield_now();
    let dump = green::format_run_info();
    for (h, line) in [(&a, la), (&b, lb), (&c, lc)] {
        let l = line_of(&dump, h.greenlet().id());
        assert!(
            l.contains(&format!("spawned at {}:{line}:", file!())),
            "{l}"
        );
    }
    pool.kill();
    group.kill();
}
