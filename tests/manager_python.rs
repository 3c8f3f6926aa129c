//! `connection` against CPython's own `multiprocessing.connection`, both ways, over a
//! Unix socket and TCP: Python 3.12+ (HMAC-SHA256 with the `{sha256}` prefix) and
//! Python ≤ 3.11 (HMAC-MD5, accepted only with `allow_legacy_md5`). A Python that is
//! not installed is skipped with a printed reason.
#![allow(clippy::disallowed_types)] // tests/common counts with a std atomic

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use shmkit::connection::{Client, Connection, Listener, Options};
use shmkit::manager::Error;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/conn_peer.py");

/// A Python interpreter: `python3` with `PYENV_VERSION` set to `version` (or the
/// default one when `None`), if it runs and is of the wanted major.minor.
fn python(version: Option<&str>, want_modern: bool) -> Option<Command> {
    let mut probe = Command::new("python3");
    if let Some(v) = version {
        probe.env("PYENV_VERSION", v);
    }
    let out = probe
        .args(["-c", "import sys; print(sys.version_info[1])"])
        .output()
        .ok()?;
    let minor: u32 = String::from_utf8_lossy(&out.stdout).trim().parse().ok()?;
    if !out.status.success() || (minor >= 12) != want_modern {
        return None;
    }
    let mut cmd = Command::new("python3");
    if let Some(v) = version {
        cmd.env("PYENV_VERSION", v);
    }
    cmd.arg(SCRIPT);
    Some(cmd)
}

fn modern() -> Option<Command> {
    let p = python(Some("3.13.0"), true).or_else(|| python(Some("3.12.1"), true));
    let p = p.or_else(|| python(None, true));
    if p.is_none() {
        eprintln!("SKIPPED: no Python >= 3.12 (tried PYENV_VERSION=3.13.0, 3.12.1, python3)");
    }
    p
}

fn legacy() -> Option<Command> {
    let p = python(None, false).or_else(|| python(Some("3.11.7"), false));
    if p.is_none() {
        eprintln!("SKIPPED: no Python <= 3.11 (python3 is newer or absent)");
    }
    p
}

fn hex(key: &[u8]) -> String {
    key.iter().map(|b| format!("{b:02x}")).collect()
}

/// The Rust side of `talk` in conn_peer.py.
fn talk(conn: &mut Connection) {
    conn.set_timeout(Some(Duration::from_secs(20)));
    let first = conn.recv_bytes(1 << 20).unwrap();
    let big = conn.recv_bytes(1 << 20).unwrap();
    assert_eq!(first, b"from python");
    assert_eq!(big.len(), 100_000);
    assert!(big.iter().enumerate().all(|(i, &b)| b == (i % 251) as u8));
    let mut reply = b"rust:".to_vec();
    reply.extend_from_slice(&first);
    conn.send_bytes(&reply).unwrap();
    conn.send_bytes(&big).unwrap();
}

fn unix_path(tag: &str) -> std::path::PathBuf {
    std::env::temp_dir()
        .join(format!("shmkit-py-{}", std::process::id()))
        .join(format!("{tag}.sock"))
}

/// Python's Client against our Listener; returns (what accept gave, Python's output).
fn python_client(
    mut py: Command,
    listener: Listener,
    py_key: &[u8],
) -> (Result<(), Error>, String, Option<i32>) {
    let addr = match listener.address() {
        shmkit::connection::Address::Unix(p) => format!("unix:{}", p.display()),
        shmkit::connection::Address::Tcp(hp) => format!("tcp:{hp}"),
    };
    let child = py
        .args(["client", &addr, &hex(py_key)])
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let accepted = listener.accept().map(|mut c| talk(&mut c));
    let out = child.wait_with_output().unwrap();
    (
        accepted,
        String::from_utf8_lossy(&out.stdout).into_owned(),
        out.status.code(),
    )
}

/// Our Client against Python's Listener.
fn python_listener(
    mut py: Command,
    unix: bool,
    py_key: &[u8],
    our_key: &[u8],
    options: Options,
) -> (Result<(), Error>, String, Option<i32>) {
    let path = unix_path(&format!("pylisten-{}", hex(py_key)));
    if unix {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let _ = std::fs::remove_file(&path);
    }
    let where_ = if unix {
        format!("unix:{}", path.display())
    } else {
        "tcp".into()
    };
    let mut child = py
        .args(["listen", &where_, &hex(py_key)])
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let address = if unix {
        where_.clone()
    } else {
        format!("tcp:127.0.0.1:{}", first.trim())
    };
    let connected =
        Client::connect_with(address.as_str(), our_key, &options).map(|mut c| talk(&mut c));
    // (On failure our connection is closed by now, so Python's accept ends too.)
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut stdout, &mut rest);
    let status = child.wait().unwrap();
    let _ = std::fs::remove_file(&path);
    (connected, rest, status.code())
}

fn listener(unix: bool, tag: &str, key: &[u8], options: Options) -> Listener {
    if unix {
        let path = unix_path(tag);
        let _ = std::fs::remove_file(&path);
        Listener::bind_with(&path, key, options).unwrap()
    } else {
        Listener::bind_with("tcp:127.0.0.1:0", key, options).unwrap()
    }
}

#[test]
fn python_3_12_plus_client_and_listener_talk_to_ours() {
    for unix in [true, false] {
        let Some(py) = modern() else { return };
        let l = listener(unix, "modern-ok", b"right key", Options::new());
        let (ours, out, code) = python_client(py, l, b"right key");
        assert!(ours.is_ok(), "{ours:?} / python: {out}");
        assert_eq!((out.trim(), code), ("OK", Some(0)));

        let (ours, out, code) = python_listener(
            modern().unwrap(),
            unix,
            b"right key",
            b"right key",
            Options::new(),
        );
        assert!(ours.is_ok(), "{ours:?}");
        assert_eq!((out.trim(), code), ("OK", Some(0)));
    }
}

#[test]
fn wrong_keys_fail_on_both_sides() {
    for unix in [true, false] {
        let Some(py) = modern() else { return };
        let l = listener(unix, "modern-bad", b"right key", Options::new());
        let (ours, out, code) = python_client(py, l, b"wrong key");
        assert!(matches!(ours, Err(Error::Authentication(_))), "{ours:?}");
        assert!(out.starts_with("AUTH"), "python said: {out}");
        assert_eq!(code, Some(3));

        let (ours, out, code) = python_listener(
            modern().unwrap(),
            unix,
            b"right key",
            b"wrong key",
            Options::new(),
        );
        assert!(matches!(ours, Err(Error::Authentication(_))), "{ours:?}");
        assert!(out.starts_with("AUTH"), "python said: {out}");
        assert_eq!(code, Some(3));
    }
}

#[test]
fn python_3_11_needs_the_legacy_opt_in() {
    for unix in [true, false] {
        let Some(py) = legacy() else { return };
        // Refused by default, both ways.
        let l = listener(unix, "legacy-refused", b"k", Options::new());
        let (ours, out, _) = python_client(py, l, b"k");
        assert!(
            matches!(ours, Err(Error::Authentication(m)) if m.contains("MD5")),
            "{ours:?}"
        );
        assert!(!out.contains("OK"));
        let (ours, _, _) = python_listener(legacy().unwrap(), unix, b"k", b"k", Options::new());
        assert!(
            matches!(ours, Err(Error::Authentication(m)) if m.contains("MD5")),
            "{ours:?}"
        );

        // Accepted and answered with the opt-in.
        let legacy_ok = Options::new().allow_legacy_md5(true);
        let l = listener(unix, "legacy-ok", b"k", legacy_ok.clone());
        let (ours, out, code) = python_client(legacy().unwrap(), l, b"k");
        assert!(ours.is_ok(), "{ours:?} / python: {out}");
        assert_eq!((out.trim(), code), ("OK", Some(0)));
        let (ours, out, code) = python_listener(legacy().unwrap(), unix, b"k", b"k", legacy_ok);
        assert!(ours.is_ok(), "{ours:?}");
        assert_eq!((out.trim(), code), ("OK", Some(0)));

        // A wrong key under the legacy digest is still refused.
        let l = listener(
            unix,
            "legacy-bad",
            b"k",
            Options::new().allow_legacy_md5(true),
        );
        let (ours, out, code) = python_client(legacy().unwrap(), l, b"other");
        assert!(matches!(ours, Err(Error::Authentication(_))), "{ours:?}");
        assert_eq!(code, Some(3), "python said: {out}");
    }
}
