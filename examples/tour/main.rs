//! A tour of shmkit: each section forks real processes and shows one part of the kit
//! doing its job. Run it with `cargo run --release --example tour`.
//!
//! Sections live in their own files beside this one; each prints what it shows and
//! checks its own result, so a broken kit makes the tour fail loudly.
#![allow(clippy::disallowed_types)]

mod basics;
mod channel;
mod pool;
mod sync;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("shmkit tour (pid {})\n", std::process::id());
    basics::run()?;
    sync::run()?;
    channel::run()?;
    pool::run()?;
    println!("\ntour finished: every section checked its result.");
    Ok(())
}
