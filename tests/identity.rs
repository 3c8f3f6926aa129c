//! Identity and liveness that survive PID namespaces and pid reuse (issue: soundness).
//!
//! A test binary of its own with its own `main` (`harness = false`): the scenarios
//! re-run this very executable inside new PID namespaces (`unshare --user
//! --map-root-user --pid --fork`), as a holder or a contender, chosen by the
//! `SHMKIT_IDENTITY_ROLE` environment variable. Where the kernel refuses user
//! namespaces, each scenario prints why it is skipped.
//!
//! `SHMKIT_NS_RUNS=N` repeats the kill-latency scenario N times (default 10).
// Tests name core atomics directly: they are not algorithms under loom.
#![allow(clippy::disallowed_types)]

use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use shmkit::{
    Error, GetError, LockError, Mutex, Pipe, Process, Queue, ReentrantMutex, Shared, ShmSafe,
};

mod common;
#[path = "common/queue_probe.rs"]
mod queue_probe;

/// What the processes of a scenario share (a named segment).
#[repr(C)]
struct Arena {
    /// Set by a role when it is in position.
    ready: AtomicU32,
    mutex: Mutex<u64>,
    rmutex: ReentrantMutex<u64>,
    pipe: Pipe<256>,
}

// SAFETY: repr(C); atomics and kit primitives (all ShmSafe), no pointers, no Drop.
unsafe impl ShmSafe for Arena {}

fn arena() -> Arena {
    Arena {
        ready: AtomicU32::new(0),
        mutex: Mutex::new(0),
        rmutex: ReentrantMutex::new(0),
        pipe: Pipe::new(),
    }
}

/// One scenario: `Err` says what went wrong.
type Scenario = fn() -> Result<(), String>;

/// 128 KiB items: a put copies long enough to be caught holding its claim.
type Big = [u64; 16384];

/// A queue of big items and a child's progress flags.
#[repr(C)]
struct QueueArena {
    q: Queue<Big, 2>,
    aim: queue_probe::Aim,
}

// SAFETY: repr(C); a kit queue and atomics; no pointers, no Drop.
unsafe impl ShmSafe for QueueArena {}
// SAFETY: all-zero is an empty queue and cleared flags.
unsafe impl shmkit::Zeroable for QueueArena {}

/// Puts one big item, flagging its start and end (run by a process to be caught
/// inside the put).
fn put_one(a: &QueueArena) {
    let item = [7u64; 16384];
    a.aim.run(|| {
        let _ = a.q.put(item);
    });
}

/// Stops `pid` at random moments until it is caught holding a WRITING claim in
/// `a.q` (it stays stopped: `true`), or its put finished first (`false`).
fn catch_writing(
    a: &QueueArena,
    pid: i32,
    rng: &mut queue_probe::Rng,
    span: &mut Duration,
) -> bool {
    a.aim.catch(pid, rng, span, || {
        !queue_probe::slots_of_kind(&a.q, queue_probe::WRITING).is_empty()
    })
}

const ROLE: &str = "SHMKIT_IDENTITY_ROLE";
const SEGMENT: &str = "SHMKIT_IDENTITY_SEGMENT";

fn main() -> ExitCode {
    if let Ok(role) = std::env::var(ROLE) {
        return ExitCode::from(run_role(&role));
    }
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let tests: &[(&str, Scenario)] = &[
        (
            "mutex_holder_in_another_namespace_is_alive_then_dead",
            mutex_holder_in_another_namespace,
        ),
        (
            "contender_in_another_namespace_sees_a_live_holder",
            contender_in_another_namespace,
        ),
        (
            "pipe_end_owner_in_another_namespace",
            pipe_owner_in_another_namespace,
        ),
        ("a_reused_pid_inherits_nothing", reused_pid_inherits_nothing),
        (
            "queue_claim_in_another_namespace",
            queue_claim_in_another_namespace,
        ),
        (
            "a_reused_pid_does_not_keep_a_dead_queue_claim",
            reused_pid_queue_claim,
        ),
        (
            "a_segment_made_under_another_registry_is_refused",
            foreign_registry_is_refused,
        ),
    ];
    let mut failed = 0;
    for (name, test) in tests {
        if !filter.is_empty() && !filter.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        let start = Instant::now();
        match test() {
            Ok(()) => println!("test {name} ... ok ({:?})", start.elapsed()),
            Err(why) => {
                failed += 1;
                println!("test {name} ... FAILED: {why}");
            }
        }
    }
    if failed > 0 {
        println!("test result: FAILED. {failed} failed");
        ExitCode::FAILURE
    } else {
        println!("test result: ok.");
        ExitCode::SUCCESS
    }
}

// ---- roles (run in the re-executed binary) ---------------------------------------------

fn run_role(role: &str) -> u8 {
    match role {
        "mutex-holder" => {
            let a = open_arena();
            core::mem::forget(a.mutex.lock().unwrap());
            a.ready.store(1, Ordering::SeqCst);
            sleep_forever()
        }
        "mutex-contender" => {
            let a = open_arena();
            // The holder (in the parent's namespace) lives: never OwnerDead.
            for _ in 0..5 {
                match a.mutex.lock_timeout(Duration::from_millis(20)) {
                    Err(LockError::Timeout) => {}
                    Err(LockError::OwnerDead(_)) => return 1,
                    _ => return 2,
                }
            }
            0
        }
        "pipe-owner" => {
            let a = open_arena();
            let (_, end) = a.pipe.ends();
            end.send(&7u64).unwrap();
            a.ready.store(1, Ordering::SeqCst);
            sleep_forever()
        }
        "reuse" => reuse_inside_namespace(),
        "queue-producer" => {
            let name = std::env::var(SEGMENT).expect("segment name");
            let a = Shared::<QueueArena>::open(&name).expect("open");
            put_one(&a);
            sleep_forever()
        }
        "queue-reuse" => queue_reuse_inside_namespace(),
        "open-foreign" => match Shared::<Arena>::open(&std::env::var(SEGMENT).unwrap()) {
            Err(e) if e.kind() == shmkit::SegmentErrorKind::ForeignRegistry => 0,
            Err(_) => 2,
            Ok(_) => 1,
        },
        _ => 99,
    }
}

fn open_arena() -> Shared<Arena> {
    let name = std::env::var(SEGMENT).expect("segment name");
    Shared::open(&name).expect("open the scenario's segment")
}

fn sleep_forever() -> ! {
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

// ---- namespaces -------------------------------------------------------------------------

/// Can this machine make user + PID namespaces? `Err(reason)` if not.
fn namespaces_work() -> Result<(), String> {
    let out = Command::new("unshare")
        .args(["--user", "--map-root-user", "--pid", "--fork", "true"])
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("cannot run unshare: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "the kernel refuses user/PID namespaces: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// This executable re-run in a new PID namespace as `role`.
struct InNamespace {
    unshare: std::process::Child,
}

impl InNamespace {
    fn start(role: &str, segment: &str, mount_proc: bool) -> InNamespace {
        let exe = std::env::current_exe().expect("current_exe");
        let mut args = vec!["--user", "--map-root-user", "--pid", "--fork"];
        if mount_proc {
            args.extend(["--mount", "--mount-proc"]);
        }
        let unshare = Command::new("unshare")
            .args(args)
            .arg(exe)
            .env(ROLE, role)
            .env(SEGMENT, segment)
            // unshare prints a harmless sigprocmask warning here; roles report
            // through exit codes and shared memory.
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn unshare");
        InNamespace { unshare }
    }

    /// The pid (in our namespace) of the process unshare forked into the new one.
    fn inner_pid(&self, within: Duration) -> Option<i32> {
        let path = format!("/proc/{0}/task/{0}/children", self.unshare.id());
        let start = Instant::now();
        // At least one look, even for `within` zero (the Drop below: a loop that
        // never ran left the inner process alive, orphaned once unshare was killed).
        loop {
            if let Ok(s) = std::fs::read_to_string(&path) {
                if let Some(pid) = s.split_whitespace().next().and_then(|p| p.parse().ok()) {
                    return Some(pid);
                }
            }
            if start.elapsed() >= within {
                return None;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Waits (bounded) for it to end; its exit code.
    fn wait(mut self, within: Duration) -> Option<i32> {
        let start = Instant::now();
        while start.elapsed() < within {
            if let Ok(Some(status)) = self.unshare.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        None
    }
}

impl Drop for InNamespace {
    fn drop(&mut self) {
        if let Some(pid) = self.inner_pid(Duration::ZERO) {
            // SAFETY: kill(2) with a pid we just read; at worst it names nothing.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        let _ = self.unshare.kill();
        let _ = self.unshare.wait();
    }
}

fn kill(pid: i32) {
    // SAFETY: kill(2) on a process of ours.
    unsafe { libc::kill(pid, libc::SIGKILL) };
}

fn wait_ready(a: &Arena, within: Duration) -> Result<(), String> {
    let start = Instant::now();
    while a.ready.load(Ordering::SeqCst) == 0 {
        if start.elapsed() > within {
            return Err("the role never got ready".into());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(())
}

fn unique(tag: &str) -> String {
    format!("shmkit-identity-{tag}-{}", std::process::id())
}

// ---- scenarios --------------------------------------------------------------------------

/// A holder in another PID namespace: no `OwnerDead` while it lives; `OwnerDead`
/// within 50 ms (p99) after it is killed.
fn mutex_holder_in_another_namespace() -> Result<(), String> {
    if let Err(why) = namespaces_work() {
        println!("SKIPPED: {why}");
        return Ok(());
    }
    let runs: usize = std::env::var("SHMKIT_NS_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let mut latencies = Vec::new();
    for run in 0..runs {
        let name = unique(&format!("m{run}"));
        let a = Shared::create(&name, arena()).map_err(|e| e.to_string())?;
        let holder = InNamespace::start("mutex-holder", &name, false);
        wait_ready(&a, Duration::from_secs(10))?;
        // Alive in another namespace: the contender waits, never OwnerDead.
        for _ in 0..3 {
            match a.mutex.lock_timeout(Duration::from_millis(10)) {
                Err(LockError::Timeout) => {}
                Err(LockError::OwnerDead(_)) => {
                    return Err("OwnerDead while the holder (another namespace) lives".into());
                }
                other => return Err(format!("unexpected {:?}", other.map(|_| ()))),
            }
        }
        let pid = holder
            .inner_pid(Duration::from_secs(5))
            .ok_or("no holder pid")?;
        kill(pid);
        let killed = Instant::now();
        loop {
            match a.mutex.lock_timeout(Duration::from_millis(1)) {
                Err(LockError::OwnerDead(g)) => {
                    latencies.push(killed.elapsed());
                    g.make_consistent();
                    break;
                }
                Err(LockError::Timeout) if killed.elapsed() < Duration::from_secs(10) => {}
                other => return Err(format!("after the kill: {:?}", other.map(|_| ()))),
            }
        }
        if holder.wait(Duration::from_secs(10)).is_none() {
            return Err("unshare did not end".into());
        }
    }
    latencies.sort();
    let p99 = latencies[(latencies.len() * 99).div_ceil(100).saturating_sub(1)];
    println!(
        "OwnerDead after a kill in another namespace: {} runs, p50 {:?}, p99 {:?}",
        latencies.len(),
        latencies[latencies.len() / 2],
        p99
    );
    if p99 > Duration::from_millis(50) {
        return Err(format!("p99 {p99:?} > 50 ms"));
    }
    Ok(())
}

/// The other way round: the holder here, the contender in a new namespace.
fn contender_in_another_namespace() -> Result<(), String> {
    if let Err(why) = namespaces_work() {
        println!("SKIPPED: {why}");
        return Ok(());
    }
    let name = unique("c");
    let a = Shared::create(&name, arena()).map_err(|e| e.to_string())?;
    let guard = a.mutex.lock().map_err(|_| "lock")?;
    let contender = InNamespace::start("mutex-contender", &name, false);
    let code = contender.wait(Duration::from_secs(20));
    drop(guard);
    match code {
        Some(0) => Ok(()),
        Some(1) => {
            Err("the contender in another namespace got OwnerDead from a live holder".into())
        }
        other => Err(format!("contender ended with {other:?}")),
    }
}

/// A pipe end owned in another namespace: not adoptable, not disconnected while its
/// owner lives; `Disconnected` within 100 ms after it is killed, then adoptable.
fn pipe_owner_in_another_namespace() -> Result<(), String> {
    if let Err(why) = namespaces_work() {
        println!("SKIPPED: {why}");
        return Ok(());
    }
    let name = unique("p");
    let a = Shared::create(&name, arena()).map_err(|e| e.to_string())?;
    let owner = InNamespace::start("pipe-owner", &name, false);
    wait_ready(&a, Duration::from_secs(10))?;
    let (mine, _) = a.pipe.ends();
    if mine.recv::<u64>() != Ok(7) {
        return Err("no message".into());
    }
    for _ in 0..3 {
        if mine.recv_bytes_into_timeout(&mut [0; 8], Duration::from_millis(10))
            != Err(Error::Timeout)
        {
            return Err("the live owner's end looked gone".into());
        }
    }
    let (_, theirs) = a.pipe.ends();
    if !matches!(theirs.send(&1u64), Err(Error::EndpointInUse { .. })) {
        return Err("a live owner's end (another namespace) was adopted".into());
    }
    drop(theirs);
    let pid = owner
        .inner_pid(Duration::from_secs(5))
        .ok_or("no owner pid")?;
    kill(pid);
    let killed = Instant::now();
    let got = mine.recv_bytes_into_timeout(&mut [0; 8], Duration::from_secs(10));
    let latency = killed.elapsed();
    if got != Err(Error::Disconnected) {
        return Err(format!("after the kill: {got:?}"));
    }
    println!("Disconnected {latency:?} after the owner (another namespace) was killed");
    if latency > Duration::from_millis(100) {
        return Err(format!("Disconnected after {latency:?} > 100 ms"));
    }
    owner
        .wait(Duration::from_secs(10))
        .ok_or("unshare did not end")?;
    let (_, adopter) = a.pipe.ends();
    adopter
        .send(&9u64)
        .map_err(|e| format!("adopting the dead end: {e}"))?;
    if mine.recv::<u64>() != Ok(9) {
        return Err("no message from the adopter".into());
    }
    Ok(())
}

/// In a fresh PID namespace, a new process is given exactly the pid (and so the main
/// thread's tid) of a dead holder: the lock is still reported `OwnerDead` (the
/// reentrant one too, never re-entered), and the dead owner's pipe end is adoptable.
fn reused_pid_inherits_nothing() -> Result<(), String> {
    if let Err(why) = namespaces_work() {
        println!("SKIPPED: {why}");
        return Ok(());
    }
    let ns = InNamespace::start("reuse", "-", true);
    match ns.wait(Duration::from_secs(60)) {
        Some(0) => Ok(()),
        Some(77) => {
            println!("SKIPPED: cannot write /proc/sys/kernel/ns_last_pid in a new namespace");
            Ok(())
        }
        Some(code) => Err(format!("the scenario in the namespace failed with {code}")),
        None => Err("the scenario in the namespace did not end".into()),
    }
}

/// Runs inside the fresh namespace (this process is its pid 1).
fn reuse_inside_namespace() -> u8 {
    let a = Shared::new(arena()).expect("segment");
    let holder = Process::spawn(|| {
        core::mem::forget(a.mutex.lock().unwrap());
        core::mem::forget(a.rmutex.lock().unwrap());
        let (_, end) = a.pipe.ends();
        if end.send(&1u64).is_err() {
            return 1;
        }
        a.ready.store(1, Ordering::SeqCst);
        loop {
            std::thread::sleep(Duration::from_secs(1));
        }
    })
    .expect("fork the holder");
    let dead_pid = holder.pid();
    let mut holder = holder;
    let start = Instant::now();
    while a.ready.load(Ordering::SeqCst) == 0 {
        if start.elapsed() > Duration::from_secs(10) {
            let _ = holder.kill();
            let _ = holder.join();
            return 10;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    holder.kill().expect("kill");
    holder.join().expect("reap");
    // The next process this namespace makes gets exactly `dead_pid`.
    if std::fs::write("/proc/sys/kernel/ns_last_pid", (dead_pid - 1).to_string()).is_err() {
        return 77;
    }
    let a_ = &a;
    let reuser = Process::spawn(move || {
        let a = a_;
        // SAFETY: getpid has no preconditions.
        if unsafe { libc::getpid() } != dead_pid {
            return 20;
        }
        match a.mutex.lock_timeout(Duration::from_secs(5)) {
            Err(LockError::OwnerDead(g)) => g.make_consistent(),
            Err(LockError::Timeout) => return 21,
            _ => return 22,
        }
        match a.rmutex.lock_timeout(Duration::from_secs(5)) {
            Err(LockError::OwnerDead(g)) => g.make_consistent(),
            Ok(_) => return 23, // re-entered a dead thread's lock as if it were ours
            _ => return 24,
        }
        let (_, end) = a.pipe.ends();
        match end.send(&2u64) {
            Ok(()) => 0,
            Err(_) => 25,
        }
    })
    .expect("fork the reuser");
    if reuser.pid() != dead_pid {
        let mut reuser = reuser;
        let _ = reuser.kill();
        let _ = reuser.join();
        return 77;
    }
    let mut reuser = reuser;
    match reuser.join_timeout(Duration::from_secs(30)) {
        Ok(Some(status)) => status.code().map_or(30, |c| c as u8),
        _ => {
            let _ = reuser.kill();
            let _ = reuser.join();
            31
        }
    }
}

/// A process whose participant ids live in another registry (here: another
/// `SHMKIT_REGISTRY`) must not read this segment's owners against its own table.
fn foreign_registry_is_refused() -> Result<(), String> {
    let name = unique("f");
    let _a = Shared::create(&name, arena()).map_err(|e| e.to_string())?;
    let other = std::env::temp_dir().join(format!("shmkit-test-registry-{}", std::process::id()));
    let status = Command::new(std::env::current_exe().expect("current_exe"))
        .env(ROLE, "open-foreign")
        .env(SEGMENT, &name)
        .env("SHMKIT_REGISTRY", &other)
        .status()
        .map_err(|e| e.to_string())?;
    let _ = std::fs::remove_file(&other);
    match status.code() {
        Some(0) => Ok(()),
        Some(1) => Err("a process under another registry opened the segment".into()),
        code => Err(format!("the opener ended with {code:?}")),
    }
}

/// A producer in another PID namespace, caught (SIGSTOP) holding its claim: its slot is
/// not reclaimed while it lives (a stalled `try_get`, `lost() == 0`); once it is
/// killed, the claim is reclaimed (`lost() == 1`) within 50 ms.
fn queue_claim_in_another_namespace() -> Result<(), String> {
    if let Err(why) = namespaces_work() {
        println!("SKIPPED: {why}");
        return Ok(());
    }
    let mut rng = queue_probe::Rng(queue_probe::seed("SHMKIT_IDENTITY_SEED"));
    let mut span = Duration::from_micros(200);
    for attempt in 0..500 {
        let name = unique(&format!("q{attempt}"));
        let a = Shared::<QueueArena>::create_zeroed(&name).map_err(|e| e.to_string())?;
        let producer = InNamespace::start("queue-producer", &name, false);
        let pid = producer
            .inner_pid(Duration::from_secs(5))
            .ok_or("no producer pid")?;
        if !catch_writing(&a, pid, &mut rng, &mut span) {
            continue; // its put finished first: try again
        }
        println!(
            "caught the producer (another namespace) holding its claim after {attempt} misses"
        );
        // Alive (stopped) in another namespace: its claim stands.
        match a.q.try_get() {
            Err(GetError::Stalled | GetError::Empty) => {}
            other => {
                return Err(format!(
                    "try_get past a live claim: {:?}",
                    other.map(|_| ())
                ));
            }
        }
        if a.q.lost() != 0 {
            return Err("a live producer's claim (another namespace) was reclaimed".into());
        }
        kill(pid);
        let killed = Instant::now();
        while a.q.lost() != 1 {
            if killed.elapsed() > Duration::from_secs(10) {
                return Err("the dead producer's claim was never reclaimed".into());
            }
            std::hint::spin_loop();
        }
        let latency = killed.elapsed();
        println!("claim reclaimed {latency:?} after the kill");
        if latency > Duration::from_millis(50) {
            return Err(format!("reclaimed after {latency:?} > 50 ms"));
        }
        producer
            .wait(Duration::from_secs(10))
            .ok_or("unshare did not end")?;
        return Ok(());
    }
    Err("never caught the producer holding its claim".into())
}

/// In a fresh PID namespace: a producer caught holding its claim is killed, and a new
/// process gets exactly its pid: that process reclaims the dead claim (with pid
/// identities it would take the claim for its own, alive).
fn reused_pid_queue_claim() -> Result<(), String> {
    if let Err(why) = namespaces_work() {
        println!("SKIPPED: {why}");
        return Ok(());
    }
    let ns = InNamespace::start("queue-reuse", "-", true);
    match ns.wait(Duration::from_secs(120)) {
        Some(0) => Ok(()),
        Some(77) => {
            println!("SKIPPED: cannot write /proc/sys/kernel/ns_last_pid in a new namespace");
            Ok(())
        }
        Some(code) => Err(format!("the scenario in the namespace failed with {code}")),
        None => Err("the scenario in the namespace did not end".into()),
    }
}

/// Runs inside the fresh namespace (this process is its pid 1).
fn queue_reuse_inside_namespace() -> u8 {
    let mut rng = queue_probe::Rng(queue_probe::seed("SHMKIT_IDENTITY_SEED"));
    let mut span = Duration::from_micros(200);
    for _ in 0..500 {
        let a = Shared::<QueueArena>::new_zeroed().expect("segment");
        let a_ = &a;
        let mut holder = Process::spawn(move || {
            put_one(a_);
            0
        })
        .expect("fork the producer");
        let dead_pid = holder.pid();
        if !catch_writing(&a, dead_pid, &mut rng, &mut span) {
            let _ = holder.kill();
            let _ = holder.join();
            continue;
        }
        holder.kill().expect("kill");
        holder.join().expect("reap");
        if std::fs::write("/proc/sys/kernel/ns_last_pid", (dead_pid - 1).to_string()).is_err() {
            return 77;
        }
        let reuser = Process::spawn(move || {
            // SAFETY: getpid has no preconditions.
            if unsafe { libc::getpid() } != dead_pid {
                return 20;
            }
            // The dead producer's claim is reclaimed, not taken for ours.
            if a_.q.lost() != 1 {
                return 21;
            }
            match a_.q.try_get() {
                Err(GetError::Empty) => 0,
                _ => 22,
            }
        })
        .expect("fork the reuser");
        let mut reuser = reuser;
        if reuser.pid() != dead_pid {
            let _ = reuser.kill();
            let _ = reuser.join();
            return 77;
        }
        return match reuser.join_timeout(Duration::from_secs(30)) {
            Ok(Some(status)) => status.code().map_or(30, |c| c as u8),
            _ => {
                let _ = reuser.kill();
                let _ = reuser.join();
                31
            }
        };
    }
    32
}
