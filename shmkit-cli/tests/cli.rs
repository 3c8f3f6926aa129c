//! The `shmkit` binary against real processes: children fill queues, hold locks, own
//! pipe ends and get killed; the binary must say so, in text that fits 80 columns and
//! in JSON that parses.

#[path = "../../tests/common/mod.rs"]
mod common;

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{Child, Unlink, eventually, shm_path, unique_name};
use serde_json::Value;
use shmkit::{Event, Mutex, Pipe, Queue, Shared};

/// Runs the binary with `args`; kills it and fails past 30 s.
fn shmkit(args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_shmkit"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn shmkit");
    let start = Instant::now();
    loop {
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        if start.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("shmkit {args:?} still running after 30 s: killed");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let out = child.wait_with_output().expect("output");
    // Never killed by a signal (a crash), whatever it was fed.
    assert!(
        out.status.code().is_some(),
        "shmkit {args:?} died of a signal: {:?}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    // Human output fits an 80-column terminal.
    if !args.contains(&"--json") {
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            assert!(
                line.chars().count() <= 80,
                "a line of {} columns from shmkit {args:?}: {line:?}",
                line.chars().count()
            );
        }
    }
    out
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs with `--json` and parses stdout as one JSON value.
fn json(args: &[&str]) -> (Value, Output) {
    let mut all = args.to_vec();
    all.push("--json");
    let out = shmkit(&all);
    let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "shmkit {all:?} printed no JSON ({e}): {:?}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    (v, out)
}

/// Kills a child with SIGKILL and reaps it.
fn kill(mut child: Child) {
    child.process().kill().expect("kill");
    let status = child.join();
    assert!(!status.success());
}

#[test]
fn a_queue_filled_by_a_child_shows_its_depth() {
    let name = unique_name("cli-queue");
    let _unlink = Unlink(name.clone());
    let q = Shared::<Queue<u64, 16>>::create_zeroed(&name).unwrap();
    let child = Child::spawn(|| {
        let q = Shared::<Queue<u64, 16>>::open(&name).unwrap();
        for i in 0..5 {
            q.put(i).unwrap();
        }
        0
    });
    assert!(child.join().success());
    let out = shmkit(&["inspect", &name]);
    assert!(out.status.success(), "{out:?}");
    let t = text(&out);
    assert!(t.contains("depth        5 of 16"), "{t}");
    assert!(t.contains("shmkit::Queue<u64, 16> (Queue"), "{t}");

    let (v, out) = json(&["inspect", &name]);
    assert!(out.status.success());
    assert_eq!(v["name"], name.as_str());
    assert_eq!(v["kind"], "Queue");
    assert_eq!(v["type"], "shmkit::Queue<u64, 16>");
    assert_eq!(v["state"]["depth"], 5);
    assert_eq!(v["state"]["capacity"], 16);
    assert_eq!(v["state"]["tail"], 5);
    assert_eq!(v["state"]["closed"], false);
    assert_eq!(v["state"]["lost"], 0);
    assert_eq!(v["creator"]["liveness"], "alive");
    assert_eq!(v["creator"]["pid"], std::process::id());
    // This test process maps it.
    let me = std::process::id() as u64;
    assert!(v["mappers"].as_array().unwrap().iter().any(|p| p == me));

    // `ls` lists it, with its kind, type, creator and mappers.
    let (v, _) = json(&["ls"]);
    let seg = v["segments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name.as_str())
        .expect("listed")
        .clone();
    assert_eq!(seg["kind"], "Queue");
    assert_eq!(seg["type"], "shmkit::Queue<u64, 16>");
    assert_eq!(seg["creator"]["liveness"], "alive");
    assert!(seg["size"].as_u64().unwrap() >= 4096);
    assert!(seg["mappers"].as_array().unwrap().iter().any(|p| p == me));
    let t = text(&shmkit(&["ls"]));
    // The name may be cut to fit 80 columns.
    assert!(
        t.lines().any(|l| {
            let stem = l.split("  ").next().unwrap_or("").trim_end_matches('…');
            stem.len() > 8 && name.starts_with(stem) && l.contains("Queue")
        }),
        "{t}"
    );
    drop(q);
}

/// Writes `word` at byte `at` of `/dev/shm/<name>` (as a scribbling peer would).
fn poke(name: &str, at: u64, word: u64) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(shm_path(name))
        .unwrap();
    f.write_all_at(&word.to_le_bytes(), at).unwrap();
}

#[test]
fn claims_in_flight_show_their_claimer_and_whether_it_lives() {
    let name = unique_name("cli-claims");
    let _unlink = Unlink(name.clone());
    let q = Shared::<Queue<u64, 4>>::create_zeroed(&name).unwrap();
    q.put(1).unwrap();
    let (v, _) = json(&["inspect", &name]);
    let me = v["creator"]["id"].as_u64().unwrap();
    // What producers caught mid-put leave (a WRITING claim of lap 0): slot 1 by a
    // dead participant, slot 2 by a live one (this process).
    let dead = dead_participant();
    let (slots, stride) = (256 + 512, 16); // value offset + the queue's slot array
    let claim = |id: u64| (1u64 << 62) | id;
    poke(&name, slots + stride, claim(dead));
    poke(&name, slots + 2 * stride, claim(me));
    let (v, out) = json(&["inspect", &name]);
    assert!(out.status.success(), "{out:?}");
    let claims = v["state"]["claims"].as_array().unwrap();
    assert_eq!(claims.len(), 2, "{v}");
    assert_eq!(claims[0]["slot"], 1);
    assert_eq!(claims[0]["side"], "put");
    assert_eq!(claims[0]["by"]["id"], dead);
    assert_eq!(claims[0]["by"]["liveness"], "dead");
    assert_eq!(claims[1]["by"]["liveness"], "alive");
    assert_eq!(claims[1]["by"]["pid"], std::process::id());
    assert_eq!(v["state"]["depth"], 1);
    let t = text(&shmkit(&["inspect", &name]));
    assert!(t.contains("slot 1: put by participant"), "{t}");
    assert!(t.contains("DEAD"), "{t}");
    // A claim by an id no participant can have is corruption: a line, and status 1.
    poke(&name, slots + 3 * stride, 3u64 << 62);
    let out = shmkit(&["inspect", &name]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("corrupted: slot 3"), "{}", text(&out));
    drop(q);
}

/// The participant id of a process that has exited.
fn dead_participant() -> u64 {
    let name = unique_name("cli-dead-id");
    let _unlink = Unlink(name.clone());
    let child = Child::spawn(|| {
        let s = Shared::<Mutex<u64>>::create_zeroed(&name).unwrap();
        std::mem::forget(s);
        0
    });
    assert!(child.join().success());
    let (v, _) = json(&["inspect", &name]);
    assert_eq!(v["creator"]["liveness"], "dead");
    v["creator"]["id"].as_u64().unwrap()
}

#[test]
fn a_mutex_held_by_a_killed_child_shows_its_holder_dead() {
    let name = unique_name("cli-mutex");
    let _unlink = Unlink(name.clone());
    let m = Shared::<Mutex<u64>>::create_zeroed(&name).unwrap();
    let child = Child::spawn(|| {
        let m = Shared::<Mutex<u64>>::open(&name).unwrap();
        let guard = m.lock().unwrap();
        std::thread::sleep(Duration::from_secs(120));
        drop(guard);
        0
    });
    let pid = child.pid();
    let mut holder = Value::Null;
    assert!(eventually(Duration::from_secs(20), || {
        holder = json(&["inspect", &name]).0["state"]["holder"].clone();
        !holder.is_null()
    }));
    assert_eq!(holder["liveness"], "alive");
    assert_eq!(holder["pid"], pid);
    let t = text(&shmkit(&["inspect", &name]));
    assert!(t.contains(&format!("holder       pid {pid}")), "{t}");

    kill(child);
    let (v, out) = json(&["inspect", &name]);
    assert!(out.status.success());
    assert_eq!(v["state"]["holder"]["liveness"], "dead");
    assert_eq!(v["state"]["holder"]["id"], holder["id"]);
    assert_eq!(v["state"]["owner_died"], false);
    let t = text(&shmkit(&["inspect", &name]));
    assert!(t.contains("DEAD"), "{t}");

    // The next locker takes it over: OWNER_DIED shows until it is made consistent.
    let guard = match m.lock() {
        Err(shmkit::LockError::OwnerDead(g)) => g,
        other => panic!("{:?}", other.map(|_| ())),
    };
    let (v, _) = json(&["inspect", &name]);
    assert_eq!(v["state"]["owner_died"], true);
    assert_eq!(v["state"]["holder"]["liveness"], "alive");
    assert_eq!(v["state"]["holder"]["pid"], std::process::id());
    guard.make_consistent();
}

#[test]
fn a_pipe_shows_bytes_queued_and_a_dead_end_owner() {
    let name = unique_name("cli-pipe");
    let _unlink = Unlink(name.clone());
    let pipe = Shared::<Pipe<4096>>::create_zeroed(&name).unwrap();
    let child = Child::spawn(|| {
        let pipe = Shared::<Pipe<4096>>::open(&name).unwrap();
        let (a, _b) = pipe.ends();
        a.send_bytes(&[1; 100]).unwrap();
        std::thread::sleep(Duration::from_secs(120));
        0
    });
    let pid = child.pid();
    let mut v = Value::Null;
    assert!(eventually(Duration::from_secs(20), || {
        v = json(&["inspect", &name]).0;
        v["state"]["directions"][0]["queued_bytes"] == 8 + 104
    }));
    assert_eq!(v["kind"], "Pipe");
    assert_eq!(v["state"]["capacity"], 4096);
    assert_eq!(v["state"]["ends"][0]["owner"]["pid"], pid);
    assert_eq!(v["state"]["ends"][0]["owner"]["liveness"], "alive");
    assert!(v["state"]["ends"][1]["owner"].is_null());
    let t = text(&shmkit(&["inspect", &name]));
    assert!(t.contains("0 -> 1       112B queued"), "{t}");
    kill(child);
    let (v, _) = json(&["inspect", &name]);
    assert_eq!(v["state"]["ends"][0]["owner"]["liveness"], "dead");
    drop(pipe);
}

#[test]
fn clean_removes_a_dead_creators_leftover_and_keeps_what_is_used() {
    // A: made by a child that is then killed; nobody maps it.
    let leftover = unique_name("cli-clean-left");
    let _u1 = Unlink(leftover.clone());
    // B: made by a child that is then killed, but a live process maps it.
    let mapped = unique_name("cli-clean-mapped");
    let _u2 = Unlink(mapped.clone());
    // C: made by this (live) process.
    let live = unique_name("cli-clean-live");
    let _u3 = Unlink(live.clone());
    let ready = Shared::new(Event::new()).unwrap();
    let make = |name: String| {
        let ready = &ready;
        Child::spawn(move || {
            let s = Shared::<Queue<u32, 4>>::create_zeroed(&name).unwrap();
            ready.set();
            std::thread::sleep(Duration::from_secs(120));
            drop(s);
            0
        })
    };
    let creator = make(leftover.clone());
    assert!(ready.wait_timeout(Duration::from_secs(20)));
    kill(creator);
    ready.clear();
    let creator = make(mapped.clone());
    assert!(ready.wait_timeout(Duration::from_secs(20)));
    ready.clear();
    let mapper = {
        let (mapped, ready) = (mapped.clone(), &ready);
        Child::spawn(move || {
            let s = Shared::<Queue<u32, 4>>::open(&mapped).unwrap();
            ready.set();
            std::thread::sleep(Duration::from_secs(120));
            drop(s);
            0
        })
    };
    assert!(ready.wait_timeout(Duration::from_secs(20)));
    kill(creator);
    let mine = Shared::<Queue<u32, 4>>::create_zeroed(&live).unwrap();

    // ls shows the dead creators.
    let (v, _) = json(&["ls"]);
    let find = |name: &str| {
        v["segments"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} not listed"))
    };
    assert_eq!(find(&leftover)["creator"]["liveness"], "dead");
    assert_eq!(find(&leftover)["mappers"], serde_json::json!([]));
    assert_eq!(find(&mapped)["creator"]["liveness"], "dead");
    assert_eq!(find(&mapped)["mappers"], serde_json::json!([mapper.pid()]));

    let args = ["clean", "--dry-run", &leftover, &mapped, &live];
    let (v, out) = json(&args);
    assert!(out.status.success(), "{out:?}");
    let action = |v: &Value, name: &str| {
        v["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .map(|r| (r["action"].clone(), r["reason"].clone()))
            .unwrap()
    };
    assert_eq!(action(&v, &leftover).0, "would_remove");
    assert_eq!(action(&v, &mapped).0, "kept");
    assert_eq!(action(&v, &live).0, "kept");
    assert!(shm_path(&leftover).exists(), "a dry run removed it");
    let t = text(&shmkit(&args));
    assert!(t.contains(&format!("would remove {leftover}")), "{t}");

    let (v, out) = json(&["clean", &leftover, &mapped, &live]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(action(&v, &leftover).0, "removed");
    let (kept, why) = action(&v, &mapped);
    assert_eq!(kept, "kept");
    assert!(why.as_str().unwrap().contains("in use"), "{why}");
    assert!(
        why.as_str().unwrap().contains(&mapper.pid().to_string()),
        "{why}"
    );
    let (kept, why) = action(&v, &live);
    assert_eq!(kept, "kept");
    assert!(why.as_str().unwrap().contains("creator is alive"), "{why}");
    assert!(!shm_path(&leftover).exists());
    assert!(shm_path(&mapped).exists());
    assert!(shm_path(&live).exists());

    // Once the last mapper is gone, it goes too.
    kill(mapper);
    let (v, _) = json(&["clean", &mapped]);
    assert_eq!(action(&v, &mapped).0, "removed");
    assert!(!shm_path(&mapped).exists());
    drop(mine);
}

#[test]
fn clean_never_touches_the_registry_or_foreign_files() {
    let foreign = unique_name("cli-foreign");
    std::fs::write(shm_path(&foreign), vec![0x5A; 8192]).unwrap();
    let _u = Unlink(foreign.clone());
    // Make sure the registry exists (this process takes an id).
    let _q = Shared::new(Queue::<u8, 2>::new()).unwrap();
    let registry = format!("shmkit-registry-{}", euid());
    assert!(shm_path(&registry).exists());
    for name in [&foreign, &registry] {
        let out = shmkit(&["clean", name]);
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        assert!(text(&out).starts_with("kept"), "{}", text(&out));
        assert!(shm_path(name).exists());
    }
    let t = text(&shmkit(&["clean", &registry]));
    assert!(t.contains("participant registry"), "{t}");
}

/// The effective uid, from /proc (no unsafe needed).
fn euid() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let uid = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    uid.split_whitespace().nth(2).unwrap().parse().unwrap()
}

#[test]
fn bad_input_gets_a_clear_line_and_a_failing_status() {
    // Not found.
    let out = shmkit(&["inspect", "shmkit-cli-test-never-made"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no such segment"), "{err}");
    // A foreign file.
    let foreign = unique_name("cli-bad-foreign");
    let _u = Unlink(foreign.clone());
    std::fs::write(
        shm_path(&foreign),
        b"PK\x03\x04 some other program's bytes........",
    )
    .unwrap();
    let out = shmkit(&["inspect", &foreign]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("too small to be a shmkit segment"), "{err}");
    std::fs::write(shm_path(&foreign), vec![b'x'; 5000]).unwrap();
    let out = shmkit(&["inspect", &foreign]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a shmkit segment"));
    let (v, out) = json(&["inspect", &foreign]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("not a shmkit segment")
    );
    // ls does not list it as a segment, but says there is something else; --all lists it.
    let t = text(&shmkit(&["ls"]));
    assert!(!t.contains(&foreign), "{t}");
    assert!(t.contains("not shmkit segments"), "{t}");
    let t = text(&shmkit(&["ls", "--all"]));
    assert!(t.contains("not a shmkit segment"), "{t}");
    // A truncated segment.
    let name = unique_name("cli-bad-trunc");
    let _u2 = Unlink(name.clone());
    let q = Shared::<Queue<u64, 1024>>::create_zeroed(&name).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(shm_path(&name))
        .unwrap()
        .set_len(4096)
        .unwrap();
    let out = shmkit(&["inspect", &name]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("truncated"));
    // ls lists it with the problem.
    let t = text(&shmkit(&["ls"]));
    assert!(t.lines().any(|l| l.contains("truncated")), "{t}");
    drop(q);
    // A directory and a FIFO: never opened in a way that blocks.
    let fifo = unique_name("cli-bad-fifo");
    let _u3 = Unlink(fifo.clone());
    let made = Command::new("mkfifo").arg(shm_path(&fifo)).status();
    if made.is_ok_and(|s| s.success()) {
        let out = shmkit(&["inspect", &fifo]);
        assert_eq!(out.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&out.stderr).contains("not a shared-memory object"));
        let _ = std::fs::remove_file(shm_path(&fifo));
    }
    // Usage errors.
    assert_eq!(shmkit(&["inspect"]).status.code(), Some(2));
    assert_eq!(shmkit(&["inspect", "a/b"]).status.code(), Some(1));
}

/// Runs the binary as user `nobody` (through `setpriv`), when this test runs as root
/// and `setpriv` exists; `None` otherwise.
fn shmkit_as_nobody(args: &[&str]) -> Option<Output> {
    if euid() != 0 {
        return None;
    }
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(env!("CARGO_BIN_EXE_shmkit"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .ok()?;
    // setpriv itself failed (not permitted here): nothing to check.
    (out.status.code() != Some(127)).then_some(out)
}

#[test]
fn another_users_segments_get_a_permission_line_and_no_registry_is_made() {
    let name = unique_name("cli-perm");
    let _unlink = Unlink(name.clone());
    let q = Shared::<Queue<u64, 4>>::create_zeroed(&name).unwrap();
    let registry_before = shm_path("shmkit-registry-65534").exists();
    let Some(out) = shmkit_as_nobody(&["inspect", &name]) else {
        eprintln!("skipped: not root, or no setpriv");
        return;
    };
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("permission denied"), "{err}");
    let out = shmkit_as_nobody(&["clean", &name]).unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("permission denied"));
    assert!(shm_path(&name).exists());
    let out = shmkit_as_nobody(&["ls"]).unwrap();
    assert!(out.status.success());
    let t = String::from_utf8_lossy(&out.stdout);
    assert!(t.contains("could not be read: permission denied"), "{t}");
    // A segment made readable to others: nobody reads it, but cannot judge its ids
    // (they belong to root's registry), and looking creates no registry of nobody's.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(shm_path(&name), std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = shmkit_as_nobody(&["inspect", &name, "--json"]).unwrap();
    assert!(out.status.success(), "{out:?}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["creator"]["liveness"], "unknown");
    assert_eq!(v["state"]["capacity"], 4);
    assert!(registry_before || !shm_path("shmkit-registry-65534").exists());
    drop(q);
}

#[test]
fn a_segment_being_created_is_named_so() {
    let name = unique_name("cli-creating");
    let _u = Unlink(name.clone());
    // A header that says "initialising", by this (live) process: what an opener sees
    // while a creator is at work.
    let src = unique_name("cli-creating-src");
    let s = Shared::<Mutex<u32>>::create_zeroed(&src).unwrap();
    let mut bytes = std::fs::read(shm_path(&src)).unwrap();
    drop(s);
    bytes[12..16].copy_from_slice(&1u32.to_le_bytes()); // state = INITIALIZING
    std::fs::write(shm_path(&name), &bytes).unwrap();
    let out = shmkit(&["inspect", &name]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("still being created by participant"), "{err}");
    // Its creator id (this process) is alive: clean keeps it.
    let out = shmkit(&["clean", &name]);
    assert!(text(&out).contains("creator is alive"), "{}", text(&out));
    assert!(shm_path(&name).exists());
}

#[test]
fn watch_refreshes_with_rates() {
    let name = unique_name("cli-watch");
    let _unlink = Unlink(name.clone());
    let q = Shared::<Queue<u64, 64>>::create_zeroed(&name).unwrap();
    let child = Child::spawn(|| {
        let q = Shared::<Queue<u64, 64>>::open(&name).unwrap();
        for i in 0.. {
            if q.put_timeout(i, Duration::from_millis(1)).is_err() {
                let _ = q.try_get();
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        0
    });
    let out = shmkit(&[
        "inspect",
        &name,
        "--watch",
        "--interval",
        "0.2",
        "--count",
        "3",
        "--json",
    ]);
    assert!(out.status.success(), "{out:?}");
    let frames: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(frames.len(), 3);
    assert!(frames[0].get("rates").is_none());
    let puts = frames[2]["rates"]["puts_per_sec"].as_f64().unwrap();
    assert!(puts > 0.0, "{:?}", frames[2]);
    let out = shmkit(&[
        "inspect",
        &name,
        "--watch",
        "--interval",
        "0.05",
        "--count",
        "2",
    ]);
    assert!(out.status.success());
    let t = text(&out);
    assert_eq!(t.matches("depth").count(), 2, "{t}");
    assert!(t.contains("rates        puts"), "{t}");
    kill(child);
    drop(q);
}

#[test]
fn watch_ends_when_the_segment_goes() {
    let name = unique_name("cli-watch-gone");
    let q = Shared::<Queue<u64, 8>>::create_zeroed(&name).unwrap();
    let n = name.clone();
    let remover = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        drop(q);
        n
    });
    let out = shmkit(&[
        "inspect",
        &name,
        "--watch",
        "--interval",
        "0.05",
        "--count",
        "1000",
    ]);
    remover.join().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("removed"));
}

/// The real bytes of a fresh segment of each kind, for the fuzz cases below.
fn samples() -> Vec<Vec<u8>> {
    fn bytes<T: shmkit::ShmSafe + shmkit::Zeroable>() -> Vec<u8> {
        let n = unique_name("cli-sample");
        let s = Shared::<T>::create_zeroed(&n).unwrap();
        let b = std::fs::read(shm_path(&n)).unwrap();
        drop(s);
        b
    }
    vec![
        bytes::<Queue<u64, 8>>(),
        bytes::<shmkit::JoinableQueue<u16, 5>>(),
        bytes::<Pipe<128>>(),
        bytes::<Mutex<u64>>(),
        bytes::<shmkit::ReentrantMutex<u32>>(),
        bytes::<shmkit::Value<f32>>(),
        bytes::<shmkit::Array<i16, 9>>(),
        bytes::<shmkit::Semaphore>(),
        bytes::<Event>(),
        bytes::<shmkit::Condvar>(),
    ]
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    std::thread_local! {
        static SAMPLES: Vec<Vec<u8>> = samples();
    }

    /// Writes `bytes` as a segment file, runs `inspect` on it (text and JSON) and
    /// `ls`: each exits 0 or 1, never by a signal, within its deadline (`shmkit`
    /// checks both), and the JSON parses.
    fn feed(bytes: &[u8]) -> Result<(), TestCaseError> {
        let name = unique_name("cli-fuzz");
        let _u = Unlink(name.clone());
        std::fs::write(shm_path(&name), bytes).unwrap();
        let out = shmkit(&["inspect", &name]);
        prop_assert!(matches!(out.status.code(), Some(0 | 1)), "{out:?}");
        let (_v, out) = json(&["inspect", &name]);
        prop_assert!(matches!(out.status.code(), Some(0 | 1)));
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn random_bytes_as_a_segment_file(bytes in proptest::collection::vec(any::<u8>(), 0..10000)) {
            feed(&bytes)?;
        }

        #[test]
        fn real_segments_with_random_words_written_over_them(
            which in 0usize..10,
            // Half of the words land in the header, the rest anywhere.
            scribbles in proptest::collection::vec(
                (prop_oneof![0u16..256, any::<u16>()], any::<u64>()),
                1..6,
            ),
        ) {
            let mut bytes = SAMPLES.with(|s| s[which].clone());
            for (at, word) in &scribbles {
                let at = (*at as usize % bytes.len()) & !7;
                let end = (at + 8).min(bytes.len());
                bytes[at..end].copy_from_slice(&word.to_le_bytes()[..end - at]);
            }
            feed(&bytes)?;
        }
    }
}
