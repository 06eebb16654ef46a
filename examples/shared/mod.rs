//! Code shared by the examples: command-line parsing, a stderr logger, the seeds' echo
//! server and client, an HTTP "Hello, World!" connection, and process facts from /proc.
//! Each example includes it with `#[path = "shared/mod.rs"] mod shared;`.
#![allow(dead_code)] // each example uses part of it

pub mod cli;
pub mod echo;
pub mod http;
pub mod logger;
pub mod sys;
