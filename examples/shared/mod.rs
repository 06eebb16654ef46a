//! Code shared by the examples: command-line parsing, a stderr logger, the seeds' echo
//! server and client, and process facts from /proc. Each example includes it with
//! `#[path = "shared/mod.rs"] mod shared;`.
#![allow(dead_code)] // each example uses part of it

pub mod cli;
pub mod echo;
pub mod logger;
pub mod sys;
