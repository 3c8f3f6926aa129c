//! `shmkit ls`: every shmkit segment in /dev/shm.

use serde_json::{Value, json};
use shmkit::inspect::{Mappers, ObjectId, OpenError, Participant, Segment, mappers};
use shmkit::segment::SegmentInfo;

use crate::format::{self, Table};
use crate::json as j;

/// One object in /dev/shm, as `ls` sees it.
enum Entry {
    /// A readable shmkit segment (what its header says; not kept open, so that a
    /// /dev/shm of thousands of segments needs no more than one descriptor at a time).
    Segment {
        info: Box<SegmentInfo>,
        creator: Option<Participant>,
        object: Option<ObjectId>,
    },
    /// The participant registry.
    Registry { size: u64, maps: Vec<i32> },
    /// A shmkit object that cannot be listed as a segment now (being created,
    /// truncated, another header version...): always shown, with the reason.
    Problem(OpenError),
    /// Not a shmkit segment, or not readable by us (listed with --all).
    Other(OpenError),
}

fn classify(name: &str, maps: &Mappers) -> Option<Entry> {
    match Segment::open(name) {
        Ok(seg) => Some(Entry::Segment {
            info: Box::new(*seg.info()),
            creator: seg.creator(),
            object: seg.object(),
        }),
        // Gone between the directory read and the open.
        Err(OpenError::NotFound) => None,
        Err(OpenError::Registry) => {
            let meta = std::fs::metadata(std::path::Path::new("/dev/shm").join(name)).ok();
            let maps = meta
                .as_ref()
                .map(|m| {
                    use std::os::unix::fs::MetadataExt;
                    maps.of(ObjectId {
                        dev: m.dev(),
                        ino: m.ino(),
                    })
                    .to_vec()
                })
                .unwrap_or_default();
            Some(Entry::Registry {
                size: meta.map_or(0, |m| m.len()),
                maps,
            })
        }
        Err(
            e @ (OpenError::NotShmkit { .. }
            | OpenError::TooSmall { .. }
            | OpenError::NotAFile
            | OpenError::Empty
            | OpenError::Creating { creator: None }
            | OpenError::PermissionDenied
            | OpenError::InvalidName),
        ) => Some(Entry::Other(e)),
        Err(e) => Some(Entry::Problem(e)),
    }
}

/// The object names in /dev/shm, sorted.
fn names() -> std::io::Result<Vec<String>> {
    let mut names: Vec<String> = std::fs::read_dir("/dev/shm")?
        .filter_map(|e| Some(e.ok()?.file_name().to_string_lossy().into_owned()))
        .collect();
    names.sort();
    Ok(names)
}

/// Runs `ls`; false if /dev/shm cannot be read.
pub fn run(all: bool, json: bool) -> bool {
    let names = match names() {
        Ok(n) => n,
        Err(e) => {
            eprintln!("shmkit: cannot list /dev/shm: {e}");
            return false;
        }
    };
    let maps = mappers();
    let entries: Vec<(String, Entry)> = names
        .into_iter()
        .filter_map(|n| classify(&n, &maps).map(|e| (n, e)))
        .collect();
    if json {
        print_json(&entries, &maps);
    } else {
        print_text(&entries, &maps, all);
    }
    true
}

/// A word or two for the TYPE column of an object that is not a readable segment;
/// the whole story follows the table.
fn short(e: &OpenError) -> &'static str {
    match e {
        OpenError::NotShmkit { .. } | OpenError::TooSmall { .. } => "not shmkit",
        OpenError::NotAFile => "not a file",
        OpenError::Empty => "empty",
        OpenError::Creating { creator: Some(p) }
            if p.liveness == shmkit::inspect::Liveness::Dead =>
        {
            "abandoned"
        }
        OpenError::Creating { .. } => "being created",
        OpenError::PermissionDenied => "no access",
        OpenError::Version { .. } => "other version",
        OpenError::Truncated { .. } => "truncated",
        OpenError::BadHeader(_) => "corrupted",
        OpenError::Busy => "busy",
        _ => "unreadable",
    }
}

fn maps_cell(pids: &[i32], maps: &Mappers) -> String {
    if maps.unreadable > 0 {
        format!("{}+", pids.len())
    } else {
        pids.len().to_string()
    }
}

fn print_text(entries: &[(String, Entry)], maps: &Mappers, all: bool) {
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    let (mut other, mut unreadable, mut segments) = (0, 0, 0);
    for (name, entry) in entries {
        match entry {
            Entry::Segment {
                info,
                creator,
                object,
            } => {
                segments += 1;
                let creator = match creator {
                    Some(p) => format!("{} {}", info.creator_pid, format::liveness(p.liveness)),
                    None => "-".into(),
                };
                let pids = object.map_or(&[][..], |o| maps.of(o));
                rows.push(vec![
                    name.clone(),
                    info.kind.map_or("?", |k| k.name()).to_string(),
                    info.type_name.as_str().to_string(),
                    format::size(info.size),
                    creator,
                    format::age_of(info.created_ns).map_or("-".into(), format::age),
                    maps_cell(pids, maps),
                ]);
            }
            Entry::Registry { size, maps: pids } => rows.push(vec![
                name.clone(),
                "registry".into(),
                "participant registry".into(),
                format::size(*size),
                "-".into(),
                "-".into(),
                maps_cell(pids, maps),
            ]),
            Entry::Problem(e) => {
                notes.push(format!("{name}: {e}"));
                rows.push(vec![
                    name.clone(),
                    "-".into(),
                    short(e).into(),
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                ]);
            }
            Entry::Other(e) => {
                if matches!(e, OpenError::PermissionDenied) {
                    unreadable += 1;
                } else {
                    other += 1;
                }
                if all {
                    notes.push(format!("{name}: {e}"));
                    rows.push(vec![
                        name.clone(),
                        "-".into(),
                        short(e).into(),
                        String::new(),
                        String::new(),
                        String::new(),
                        String::new(),
                    ]);
                }
            }
        }
    }
    if segments == 0 {
        println!("no shmkit segments in /dev/shm");
    }
    if !rows.is_empty() {
        let table = Table {
            header: vec!["NAME", "KIND", "TYPE", "SIZE", "CREATOR", "AGE", "MAPS"],
            rows,
            flex: vec![0, 2],
            right: vec![3, 5, 6],
        };
        for line in table.render() {
            println!("{line}");
        }
    }
    for note in &notes {
        for line in format::wrap(note, 4) {
            println!("{line}");
        }
    }
    if !all && other > 0 {
        println!("{other} other object(s) in /dev/shm: not shmkit segments (--all lists them)");
    }
    if unreadable > 0 {
        println!(
            "{unreadable} object(s) in /dev/shm could not be read: permission denied (run as \
             their owner{})",
            if all { "" } else { "; --all lists them" }
        );
    }
    if maps.unreadable > 0 {
        println!(
            "\"+\" in MAPS: {} process(es) could not be checked (maps unreadable)",
            maps.unreadable
        );
    }
}

fn print_json(entries: &[(String, Entry)], maps: &Mappers) {
    let mut segments = Vec::new();
    let mut problems = Vec::new();
    let mut other = Vec::new();
    let mut registry = Value::Null;
    for (name, entry) in entries {
        match entry {
            Entry::Segment {
                info,
                creator,
                object,
            } => {
                let mut v = j::info(info, creator.as_ref());
                v["name"] = json!(name);
                let pids = object.map_or(&[][..], |o| maps.of(o));
                v["mappers"] = json!(pids);
                v["mappers_complete"] = json!(maps.unreadable == 0);
                segments.push(v);
            }
            Entry::Registry { size, maps: pids } => {
                registry = json!({ "name": name, "size": size, "mappers": pids });
            }
            Entry::Problem(e) => problems.push(json!({ "name": name, "error": e.to_string() })),
            Entry::Other(e) => other.push(json!({ "name": name, "why": e.to_string() })),
        }
    }
    let out = json!({
        "segments": segments,
        "problems": problems,
        "registry": registry,
        "other": other,
        "unreadable_processes": maps.unreadable,
    });
    println!("{out}");
}
