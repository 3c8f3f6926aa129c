//! `shmkit inspect NAME [--watch]`: the live state of one segment.

use std::io::{IsTerminal, Write};
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use shmkit::inspect::{ClaimSide, Corrupted, Segment, State, mappers};

use crate::format;
use crate::json as j;
use crate::signals;

/// Counters whose change per second `--watch` shows.
struct Sample {
    at: Instant,
    /// Queue: `[gets (head), puts (tail)]`; pipe: `[sent 0→1, received 0→1, sent
    /// 1→0, received 1→0]`.
    counters: Vec<u64>,
}

fn counters(state: &State) -> Vec<u64> {
    match state {
        State::Queue(q) => vec![q.head, q.tail],
        State::Pipe(p) => p
            .directions
            .iter()
            .flat_map(|d| [d.sent_total, d.received_total])
            .collect(),
        _ => Vec::new(),
    }
}

/// Per-second rates since `prev`, if it sampled the same counters.
fn rates(prev: Option<&Sample>, now: &Sample) -> Option<Vec<f64>> {
    let prev = prev?;
    let dt = now.at.duration_since(prev.at).as_secs_f64();
    if dt <= 0.0 || prev.counters.len() != now.counters.len() || now.counters.is_empty() {
        return None;
    }
    Some(
        prev.counters
            .iter()
            .zip(&now.counters)
            .map(|(a, b)| b.wrapping_sub(*a) as f64 / dt)
            .collect(),
    )
}

/// The state now, with a truncation by another process caught (see `signals`).
fn read_state(seg: &Segment) -> Result<State, Corrupted> {
    let (state, faulted) = signals::guarded(seg.mapped_range(), || seg.state());
    if faulted {
        return Err(Corrupted(
            "truncated by another process while being read".into(),
        ));
    }
    state
}

/// Runs `inspect`; false if the segment could not be read or its state is corrupted
/// (with `--watch`: if it could not be opened, or went away).
pub fn run(name: &str, watch: Option<(Duration, Option<u64>)>, json: bool) -> bool {
    let mut seg = match Segment::open(name) {
        Ok(seg) => seg,
        Err(e) => return fail(name, &e.to_string(), json),
    };
    let Some((interval, count)) = watch else {
        let state = read_state(&seg);
        let ok = state.is_ok();
        let frame = Frame {
            name,
            seg: &seg,
            state,
            rates: None,
        };
        if json {
            println!("{}", frame.json());
        } else {
            for line in frame.text() {
                println!("{line}");
            }
        }
        return ok;
    };
    let tty = !json && std::io::stdout().is_terminal();
    let mut prev: Option<Sample> = None;
    let mut frames = 0u64;
    loop {
        let state = read_state(&seg);
        let sample = Sample {
            at: Instant::now(),
            counters: state.as_ref().map(counters).unwrap_or_default(),
        };
        let frame = Frame {
            name,
            seg: &seg,
            rates: rates(prev.as_ref(), &sample),
            state,
        };
        let mut out = std::io::stdout().lock();
        if json {
            let _ = writeln!(out, "{}", frame.json());
        } else {
            if tty {
                let _ = write!(out, "\x1b[H\x1b[2J");
            } else if frames > 0 {
                let _ = writeln!(out);
            }
            for line in frame.text() {
                let _ = writeln!(out, "{line}");
            }
        }
        let _ = out.flush();
        drop(out);
        prev = Some(sample);
        frames += 1;
        if count.is_some_and(|c| frames >= c) {
            return true;
        }
        std::thread::sleep(interval);
        // The name may have been removed, or replaced by a new segment.
        match std::fs::symlink_metadata(std::path::Path::new("/dev/shm").join(name)) {
            Ok(m)
                if seg
                    .object()
                    .is_some_and(|o| o.dev == m.dev() && o.ino == m.ino()) => {}
            Ok(_) => match Segment::open(name) {
                Ok(new) => {
                    seg = new;
                    prev = None;
                }
                Err(e) => return fail(name, &format!("replaced, and the new one: {e}"), json),
            },
            Err(_) => return fail(name, "removed", json),
        }
    }
}

/// Says why `name` cannot be inspected: a line on stderr (and a JSON object on stdout
/// with `--json`). Returns false.
fn fail(name: &str, why: &str, json: bool) -> bool {
    if json {
        println!("{}", json!({ "name": name, "error": why }));
    }
    eprintln!("shmkit: {name}: {why}");
    false
}

/// One look at a segment.
struct Frame<'a> {
    name: &'a str,
    seg: &'a Segment,
    state: Result<State, Corrupted>,
    rates: Option<Vec<f64>>,
}

impl Frame<'_> {
    fn json(&self) -> Value {
        let creator = self.seg.creator();
        let mut v = j::info(self.seg.info(), creator.as_ref());
        v["name"] = json!(self.name);
        let maps = mappers();
        v["mappers"] = json!(self.seg.object().map_or(&[][..], |o| maps.of(o)));
        v["mappers_complete"] = json!(maps.unreadable == 0);
        match &self.state {
            Ok(s) => {
                v["state"] = j::state(s);
                v["error"] = Value::Null;
            }
            Err(e) => {
                v["state"] = Value::Null;
                v["error"] = json!(e.to_string());
            }
        }
        if let Some(r) = &self.rates {
            v["rates"] = match &self.state {
                Ok(State::Queue(_)) => json!({ "gets_per_sec": r[0], "puts_per_sec": r[1] }),
                Ok(State::Pipe(_)) => json!([
                    { "from_end": 0, "sent_bytes_per_sec": r[0], "received_bytes_per_sec": r[1] },
                    { "from_end": 1, "sent_bytes_per_sec": r[2], "received_bytes_per_sec": r[3] },
                ]),
                _ => Value::Null,
            };
        }
        v
    }

    fn text(&self) -> Vec<String> {
        let info = self.seg.info();
        let mut out = vec![self.name.to_string()];
        let row = |out: &mut Vec<String>, label: &str, value: String| {
            out.push(format!("  {label:<12} {value}"));
        };
        let kind = info.kind.map_or("unknown kind", |k| k.name());
        row(
            &mut out,
            "type",
            format!("{} ({kind})", info.type_name.as_str()),
        );
        row(
            &mut out,
            "size",
            format!(
                "{} (value {} bytes), made by shmkit {}.{}",
                format::size(info.size),
                info.value_size,
                info.kit_version.0,
                info.kit_version.1
            ),
        );
        let age = format::age_of(info.created_ns)
            .map_or(String::new(), |a| format!("{} ago", format::age(a)));
        match self.seg.creator() {
            Some(mut p) => {
                // The registry's pid where it knows the participant, else the header's
                // (both for display only).
                p.pid = p.pid.or(Some(info.creator_pid));
                row(
                    &mut out,
                    "created",
                    format!("{age} by {}", format::participant(&p)),
                );
            }
            None => row(&mut out, "created", age),
        }
        let maps = mappers();
        let pids = self.seg.object().map_or(&[][..], |o| maps.of(o));
        let mut mapped = if pids.is_empty() {
            "no other process".to_string()
        } else {
            let list: Vec<String> = pids.iter().map(|p| p.to_string()).collect();
            format!("pid {}", list.join(", "))
        };
        if maps.unreadable > 0 {
            mapped.push_str(&format!(" (+ up to {} unreadable)", maps.unreadable));
        }
        row(&mut out, "mapped by", mapped);
        match &self.state {
            Ok(state) => self.state_lines(state, &mut out),
            Err(e) => out.push(format!("  {e}")),
        }
        out.iter().flat_map(|l| format::wrap(l, 15)).collect()
    }

    fn state_lines(&self, state: &State, out: &mut Vec<String>) {
        let row = |out: &mut Vec<String>, label: &str, value: String| {
            out.push(format!("  {label:<12} {value}"));
        };
        let yes = |b: bool| if b { "yes" } else { "no" }.to_string();
        match state {
            State::Queue(q) => {
                row(
                    out,
                    "depth",
                    format!(
                        "{} of {} (gets {}, puts {})",
                        q.depth, q.capacity, q.head, q.tail
                    ),
                );
                row(out, "closed", yes(q.closed));
                row(out, "lost", q.lost.to_string());
                row(out, "in flight", format!("{} claim(s)", q.claims.len()));
                for c in q.claims.iter().take(10) {
                    let side = match c.side {
                        ClaimSide::Put => "put",
                        ClaimSide::Get => "get",
                    };
                    out.push(format!(
                        "    slot {}: {side} by {}",
                        c.slot,
                        format::participant(&c.by)
                    ));
                }
                if q.claims.len() > 10 {
                    out.push(format!("    … and {} more", q.claims.len() - 10));
                }
                row(
                    out,
                    "asleep",
                    format!(
                        "{} consumer(s), {} producer(s)",
                        format::sleepers(&q.consumers_asleep),
                        format::sleepers(&q.producers_asleep)
                    ),
                );
                if let Some(u) = q.unfinished {
                    let joiners = q
                        .joiners_asleep
                        .map_or("0".into(), |s| format::sleepers(&s));
                    row(
                        out,
                        "unfinished",
                        format!("{u} task(s); {joiners} joiner(s) asleep"),
                    );
                }
                if let Some(r) = &self.rates {
                    row(
                        out,
                        "rates",
                        format!(
                            "puts {}, gets {}",
                            format::rate(r[1], false),
                            format::rate(r[0], false)
                        ),
                    );
                }
            }
            State::Pipe(p) => {
                row(out, "capacity", format!("{} bytes each way", p.capacity));
                for (i, e) in p.ends.iter().enumerate() {
                    let owner = e
                        .owner
                        .as_ref()
                        .map_or("no owner yet".into(), format::participant);
                    let closed = if e.closed { ", CLOSED" } else { "" };
                    row(out, &format!("end {i}"), format!("{owner}{closed}"));
                }
                for d in &p.directions {
                    row(
                        out,
                        &format!("{} -> {}", d.from, 1 - d.from),
                        format!(
                            "{} queued; {} sent, {} received",
                            format::size(d.queued),
                            format::size(d.sent_total),
                            format::size(d.received_total)
                        ),
                    );
                    out.push(format!(
                        "  {:<12} asleep: {} receiver(s), {} sender(s)",
                        "",
                        format::sleepers(&d.receivers_asleep),
                        format::sleepers(&d.senders_asleep)
                    ));
                }
                if let Some(r) = &self.rates {
                    for d in 0..2 {
                        row(
                            out,
                            &format!("rate {} -> {}", d, 1 - d),
                            format!(
                                "sent {}, received {}",
                                format::rate(r[2 * d], true),
                                format::rate(r[2 * d + 1], true)
                            ),
                        );
                    }
                }
            }
            State::Lock(l) => {
                let holder = if l.not_recoverable {
                    "nobody: NOT RECOVERABLE (an OwnerDead guard was dropped unrepaired)".into()
                } else {
                    l.holder
                        .as_ref()
                        .map_or("nobody (unlocked)".into(), format::participant)
                };
                row(out, "holder", holder);
                if let Some(d) = l.depth {
                    row(out, "depth", d.to_string());
                }
                row(out, "waiters", yes(l.waiters));
                row(
                    out,
                    "owner died",
                    if l.owner_died {
                        "yes: taken from a dead holder, not yet made consistent".into()
                    } else {
                        "no".into()
                    },
                );
                if let Some(c) = &l.contents {
                    let items: Vec<String> = c.items.iter().map(|v| v.to_string()).collect();
                    let more = if (c.items.len() as u64) < c.len {
                        ", …"
                    } else {
                        ""
                    };
                    let label = if c.len == 1 { "value" } else { "items" };
                    let shown = if c.len == 1 {
                        items.join("")
                    } else {
                        format!("[{}{more}] ({} × {})", items.join(", "), c.len, c.item_type)
                    };
                    row(out, label, format!("{shown} (read without the lock)"));
                }
            }
            State::Semaphore(s) => {
                let bound = s
                    .bound
                    .map_or(String::new(), |b| format!(" of at most {b}"));
                row(out, "permits", format!("{}{bound} free", s.value));
                row(out, "asleep", format::sleepers(&s.sleepers));
            }
            State::Event(e) => {
                row(out, "set", yes(e.set));
                row(out, "sets", e.sets.to_string());
                row(out, "asleep", format::sleepers(&e.sleepers));
            }
            State::Barrier(b) => {
                row(out, "parties", b.parties.to_string());
                row(
                    out,
                    "arrived",
                    format!("{} in round {}", b.arrived, b.round),
                );
                row(out, "broken", yes(b.broken));
                row(out, "asleep", format::sleepers(&b.sleepers));
            }
            State::Condvar(c) => {
                row(out, "notified", format!("{} time(s)", c.notifications));
                row(out, "waiters", format::sleepers(&c.waiters));
            }
            State::Plain(v) => row(out, "value", v.to_string()),
            State::HeaderOnly(why) => out.push(format!("  {why}")),
            _ => out.push("  (a state this tool does not print)".into()),
        }
    }
}
