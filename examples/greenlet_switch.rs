//! The seeds' greenlet examples (course notes, section "五 Greenlet"), in Rust.
//!
//! 1. `test1`/`test2`: explicit switching between two greenlets.
//! 2. `eat`/`play_phone`: the first switch passes the function's argument
//!    (`gr1.switch(name='egon啦啦啦')`), later switches need none.
//! 3. Pure switching makes CPU-bound work slower: f1/f2 summing 10 million numbers,
//!    sequentially and switching after every step.
//!
//! Run: `cargo run --release --example greenlet_switch [-- --steps N]`

#[path = "shared/mod.rs"]
mod shared;

use std::cell::RefCell;
use std::hint::black_box;
use std::rc::Rc;
use std::time::Instant;

use green::{Greenlet, Value};
use shared::cli;

const USAGE: &str = "\
usage: greenlet_switch [--steps N]

The seeds' greenlet examples: explicit switches, an argument passed on the first
switch, and the slowdown of switching after every step of two sums.

Options:
  --steps N    steps of each sum in the slowdown experiment (default 10000000)
  -h, --help   print this help
";

/// A slot for a greenlet that is created after the code that switches to it.
type Later = Rc<RefCell<Option<Greenlet>>>;

fn get(slot: &Later) -> Greenlet {
    slot.borrow()
        .clone()
        .expect("greenlet created before the first switch")
}

fn test1_test2() {
    // def test1(): print('test1,first'); gr2.switch(); print('test1,sencod'); gr2.switch()
    // def test2(): print('test2,first'); gr1.switch(); print('test2,sencod')
    let (gr1, gr2): (Later, Later) = Default::default();
    let g2 = gr2.clone();
    *gr1.borrow_mut() = Some(Greenlet::new(move |_: Value| {
        println!("test1,first");
        get(&g2).switch(());
        println!("test1,sencod"); // (sic: the seeds' spelling)
        get(&g2).switch(());
    }));
    let g1 = gr1.clone();
    *gr2.borrow_mut() = Some(Greenlet::new(move |_: Value| {
        println!("test2,first");
        get(&g1).switch(());
        println!("test2,sencod");
    }));
    get(&gr1).switch(());
}

fn eat_play_phone() {
    // def eat(name): print('%s eat food 1' % name); gr2.switch('alex飞飞飞'); ...
    let (gr1, gr2): (Later, Later) = Default::default();
    let g2 = gr2.clone();
    *gr1.borrow_mut() = Some(Greenlet::new(move |name: Value| {
        println!("{name} eat food 1");
        get(&g2).switch("alex飞飞飞");
        println!("{name} eat food 2");
        get(&g2).switch(());
    }));
    let g1 = gr1.clone();
    *gr2.borrow_mut() = Some(Greenlet::new(move |name: Value| {
        println!("{name} play 1");
        get(&g1).switch(());
        println!("{name} play 2");
    }));
    // The first switch passes the argument; later switches need none.
    get(&gr1).switch("egon啦啦啦");
}

fn pure_switching(steps: u64) {
    // 顺序执行 (sequential)
    let start = Instant::now();
    let mut res = 0u64;
    for i in 0..steps {
        res = res.wrapping_add(black_box(i));
    }
    black_box(res);
    let mut res = 1u64;
    for i in 0..steps {
        res = res.wrapping_mul(black_box(i));
    }
    black_box(res);
    let sequential = start.elapsed();
    println!("run time is: {:?} (sequential)", sequential);

    // 切换 (switching after every step)
    let (gr1, gr2): (Later, Later) = Default::default();
    let g2 = gr2.clone();
    *gr1.borrow_mut() = Some(Greenlet::new(move |_: Value| {
        let other = get(&g2);
        let mut res = 0u64;
        for i in 0..steps {
            res = res.wrapping_add(black_box(i));
            other.switch(());
        }
        black_box(res);
    }));
    let g1 = gr1.clone();
    *gr2.borrow_mut() = Some(Greenlet::new(move |_: Value| {
        let other = get(&g1);
        let mut res = 1u64;
        for i in 0..steps {
            res = res.wrapping_mul(black_box(i));
            other.switch(());
        }
        black_box(res);
    }));
    let start = Instant::now();
    get(&gr1).switch(());
    let switching = start.elapsed();
    println!("run time is: {:?} (switching after every step)", switching);
    println!(
        "switching is {:.1}x slower ({:.1} ns per switch; the seeds' Python greenlet: about 4.5x)",
        switching.as_secs_f64() / sequential.as_secs_f64().max(1e-9),
        switching.as_nanos() as f64 / (2 * steps) as f64,
    );
    // Break the gr1 <-> gr2 reference cycle so both are freed.
    gr1.borrow_mut().take();
    gr2.borrow_mut().take();
}

fn main() {
    let mut steps = 10_000_000;
    let mut args = cli::Args::new(USAGE);
    while let Some(arg) = args.next() {
        match arg {
            cli::Long("steps") => steps = args.count(1, 1 << 40),
            other => cli::reject(other),
        }
    }
    test1_test2();
    println!();
    eat_play_phone();
    println!();
    pure_switching(steps);
}
