//! `shmkit`: list, inspect and clean up shmkit's shared-memory segments from outside.
//!
//! ```text
//! shmkit ls [--all]                      every shmkit segment in /dev/shm
//! shmkit inspect NAME [--watch]          the live state of one segment
//! shmkit clean [--dry-run] [NAME...]     remove segments of dead creators nobody maps
//! ```
//!
//! Every command takes `--json`. Everything it knows comes from `shmkit::inspect`: this
//! crate parses arguments, calls the library and prints.

mod clean;
mod format;
mod inspect;
mod json;
mod ls;
#[allow(unsafe_code)]
mod signals;

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

/// List, inspect and clean up shmkit's shared-memory segments.
#[derive(Parser, Debug)]
#[command(
    name = "shmkit",
    version,
    about,
    after_help = "Exit status: 0 when the command did what was asked; 1 when a segment \
                  could not be read, its state is corrupted, or a removal failed; 2 for \
                  a usage error."
)]
struct Cli {
    /// Print JSON instead of text (one object; with --watch, one object per line).
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// List the shmkit segments in /dev/shm: kind, type, size, creator and whether it
    /// is alive, age, and how many processes map it.
    Ls {
        /// Also list the objects in /dev/shm that are not shmkit segments.
        #[arg(long, short)]
        all: bool,
    },
    /// Show the live state of a segment, read without a lock and without writing a
    /// byte: a queue's depth and claims, a pipe's bytes queued, a lock's holder...
    Inspect {
        /// The segment's name (as given to Shared::create, without /dev/shm/).
        name: String,
        /// Refresh until interrupted, with rates per second for queues and pipes.
        #[arg(long, short)]
        watch: bool,
        /// Seconds between refreshes with --watch.
        #[arg(long, default_value = "1", value_parser = parse_interval)]
        interval: Duration,
        /// With --watch: stop after this many refreshes.
        #[arg(long)]
        count: Option<u64>,
    },
    /// Remove segments whose creator is dead and that no process holds open or maps
    /// (never another program's objects, never the participant registry).
    Clean {
        /// Say what would be removed, and remove nothing.
        #[arg(long, short = 'n')]
        dry_run: bool,
        /// Only these segments (default: every object in /dev/shm).
        names: Vec<String>,
    },
}

fn parse_interval(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if !(0.01..=3600.0).contains(&secs) {
        return Err("the interval must be between 0.01 and 3600 seconds".into());
    }
    Ok(Duration::from_secs_f64(secs))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    signals::install();
    let ok = match cli.command {
        Command::Ls { all } => ls::run(all, cli.json),
        Command::Inspect {
            name,
            watch,
            interval,
            count,
        } => inspect::run(&name, watch.then_some((interval, count)), cli.json),
        Command::Clean { dry_run, names } => clean::run(dry_run, &names, cli.json),
    };
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
