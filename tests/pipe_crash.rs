//! Crash loops for `Pipe` that vary the shape: a sender process and a receiver
//! process stream through a small ring (64 or 256 bytes, so laps happen all the
//! time) while the test kills (`SIGKILL`) either of them at random points — while it
//! runs, while it sleeps (its peer paused), and inside `recv_with` — and pauses
//! either (`SIGSTOP`/`SIGCONT`); each victim is replaced by a new process that adopts
//! its end. Every message carries its sender generation, index and a checksum. Every
//! third sender generation sends in batches (`send_many`, which publishes each batch
//! by one store), so kills land inside batches too.
//!
//! The receivers check each message against a per-direction model of an SPSC FIFO
//! with crashes, and report the first violation in shared memory:
//!
//! - intact (length and checksum), in order, each at most once — except that a
//!   receiver killed inside `recv_with` leaves that message queued (the next receiver
//!   gets it again: counted), and one killed right after `recv_bytes_into` returned
//!   has consumed a message nobody records (counted);
//! - exactly once unless its sender died before publishing it: when generation `g+1`
//!   shows up, every message of `g` whose send had returned (`done[g]`) has arrived,
//!   and generations that never got a send through published nothing;
//! - linearizable at the edges: a `try_recv` that says `WouldBlock` was not invoked
//!   after a send returned whose message has not been received; and `Disconnected`
//!   is seen only if the peer that owned the end when the call began has since been
//!   killed (never for a paused peer, never before the peer end was first claimed).
//!   Senders check the same for their `Disconnected`.
//!
//! Random kills rarely land in the windows that matter most — between two stores of
//! the protocol, a few instructions apart. Built with `RUSTFLAGS="--cfg
//! shmkit_failpoints"`, every sender and receiver also arms one of the library's
//! failpoints (`shmkit::__failpoints::POINTS`: after the header store before `tail`,
//! after a padding record, after `head` passed padding, after the claim of an end,
//! before the store that publishes a batch, ...) with a random countdown, and kills itself there; the test replaces it as it
//! replaces the processes it kills.
//!
//! Budget: `SHMKIT_PIPE_KILLS` kills per ring size (default 600: the file runs in
//! well under a minute here); `SHMKIT_PIPE_SEED` sets the seed (printed). Long runs:
//! `SHMKIT_PIPE_KILLS=5000 cargo test --release --test pipe_crash -- --nocapture`,
//! and with failpoints `RUSTFLAGS="--cfg shmkit_failpoints"
//! CARGO_TARGET_DIR=target/failpoints SHMKIT_PIPE_KILLS=5000 cargo test --release
//! --test pipe_crash -- --nocapture`.
#![allow(clippy::disallowed_types)]

mod common;

use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::time::{Duration, Instant};

use common::{Child, Rng, env_seed, env_u64, fnv, mix};
use shmkit::{Connection, Error, Pipe, Process, Shared, ShmSafe, Zeroable};

/// Generations of each role the shared arrays have room for.
const MAX_GEN: usize = 1 << 14;
/// The message that ends a run (sent by the last sender when told to stop).
const END: u64 = u64::MAX;
/// The whole test must finish within this; every wait is bounded by it.
const DEADLINE: Duration = Duration::from_secs(300);

/// The control block in shared memory.
#[repr(C)]
struct Ctl {
    /// Set by the test: the current sender sends END until the receiver has it.
    stop: AtomicU64,
    /// Set by the receiver that got END.
    ended: AtomicU64,
    /// The last sender generation that claimed its end (0: none yet).
    tx_claimed: AtomicU64,
    /// The last receiver generation that claimed its end (0: none yet).
    rx_claimed: AtomicU64,
    /// The id of the last message a receiver recorded (0: none; ids are `g << 32 | i`
    /// with `g >= 1`), and how (`ZERO_COPY`).
    last: AtomicU64,
    /// Copying receivers started since `last` was recorded (see
    /// `unrecorded_allowance`).
    extra_gaps: AtomicU64,
    /// The first violation found (0: none): a code, with details in `detail`.
    violation: AtomicU64,
    detail: [AtomicU64; 4],
    /// Messages received and recorded; redeliveries and unrecorded consumptions at
    /// receiver deaths; `WouldBlock` edge checks made.
    received: AtomicU64,
    redelivered: AtomicU64,
    unrecorded: AtomicU64,
    edge_checks: AtomicU64,
    /// Per sender generation: sends that returned `Ok` (the index of the next one).
    done: [AtomicU64; MAX_GEN],
    /// Per generation of each role: set by the test before it kills that process
    /// (or by the process itself before a failpoint kills it).
    tx_killed: [AtomicU64; MAX_GEN],
    rx_killed: [AtomicU64; MAX_GEN],
    /// Per generation of each role: the failpoint it armed (index + 1; 0: none).
    tx_point: [AtomicU64; MAX_GEN],
    rx_point: [AtomicU64; MAX_GEN],
}

// SAFETY: repr(C), atomics only (every bit pattern valid, no pointers, no Drop).
unsafe impl ShmSafe for Ctl {}
// SAFETY: all-zero atomics are valid: the documented initial state.
unsafe impl Zeroable for Ctl {}

impl Ctl {
    fn report(&self, code: u64, detail: [u64; 4]) {
        if self
            .violation
            .compare_exchange(0, code, SeqCst, SeqCst)
            .is_ok()
        {
            for (d, v) in self.detail.iter().zip(detail) {
                d.store(v, SeqCst);
            }
        }
    }
}

fn kills() -> u64 {
    env_u64("SHMKIT_PIPE_KILLS", 600).min(MAX_GEN as u64 - 100)
}

/// Message `id`: [id][body][fnv of id and body], 16..=`max` bytes.
fn message_len(id: u64, max: usize) -> usize {
    if id == END {
        return 16;
    }
    16 + (mix(id) % (max as u64 - 15)) as usize
}

fn fill_message(id: u64, buf: &mut [u8]) {
    let n = buf.len();
    buf[..8].copy_from_slice(&id.to_le_bytes());
    for (j, b) in buf[8..n - 8].iter_mut().enumerate() {
        *b = (mix(id) >> (j % 8 * 8)) as u8 ^ j as u8;
    }
    let check = fnv(&buf[..n - 8]);
    buf[n - 8..].copy_from_slice(&check.to_le_bytes());
}

/// The id of an intact message, or `None` if it is torn.
fn check_message(msg: &[u8], max: usize) -> Option<u64> {
    let n = msg.len();
    if n < 16 {
        return None;
    }
    let id = u64::from_le_bytes(msg[..8].try_into().unwrap());
    let check = u64::from_le_bytes(msg[n - 8..].try_into().unwrap());
    (n == message_len(id, max) && check == fnv(&msg[..n - 8])).then_some(id)
}

fn id(g: u64, i: u64) -> u64 {
    (g << 32) | i
}

fn gen_of(id: u64) -> u64 {
    id >> 32
}

fn index_of(id: u64) -> u64 {
    id & 0xffff_ffff
}

/// Violation codes.
const TORN: u64 = 1;
const ORDER: u64 = 2;
const LOST: u64 = 3;
const EMPTY_EDGE: u64 = 4;
const RX_DISCONNECTED: u64 = 5;
const TX_DISCONNECTED: u64 = 6;
const ERROR: u64 = 7;

/// How many messages must lie between `prev` (0: nothing before) and `cur` in the
/// stream, at least, given what the senders recorded: every message of a generation
/// whose send returned (`done`) was published. `None` if `cur` cannot come after
/// `prev` at all. (Generations before `cur`'s are dead: their counts are final.)
fn gap(ctl: &Ctl, prev: u64, cur: u64) -> Option<u64> {
    let done = |g: u64| ctl.done[g as usize].load(SeqCst);
    let (h, j) = (gen_of(cur), index_of(cur));
    if prev == 0 {
        return Some((1..h).map(done).sum::<u64>() + j);
    }
    let (g, i) = (gen_of(prev), index_of(prev));
    if h == g {
        return j.checked_sub(i + 1);
    }
    if h < g {
        return None;
    }
    // The rest of `g` whose sends returned, the generations between, `h` up to `j`.
    let rest_of_g = done(g).saturating_sub(i + 1);
    Some(rest_of_g + (g + 1..h).map(done).sum::<u64>() + j)
}

/// Does `cur` come right after `prev` in the stream?
fn follows(ctl: &Ctl, prev: u64, cur: u64) -> bool {
    gap(ctl, prev, cur) == Some(0)
}

/// `last` holds the id of the last recorded message, with this bit set if it was
/// recorded inside `recv_with` (before its release: a receiver killed right after
/// leaves it queued), clear if after `recv_bytes_into` returned (a receiver killed
/// before recording has consumed one message nobody recorded).
const ZERO_COPY: u64 = 1 << 63;

/// How many messages receivers may have consumed since `last` without recording
/// them: one if `last`'s recorder copies out (it may have consumed one more before
/// it died), plus one for each copying receiver started since (`extra_gaps`).
fn unrecorded_allowance(ctl: &Ctl, raw_last: u64) -> u64 {
    u64::from(raw_last & ZERO_COPY == 0 && raw_last != 0) + ctl.extra_gaps.load(SeqCst)
}

/// A receiver's view of the stream.
struct Seen {
    /// The last message this receiver got (0: none yet).
    prev: u64,
}

/// Checks a received message against the model, then records it in `last`.
fn record(ctl: &Ctl, seen: &mut Seen, cur: u64, zero_copy: bool) {
    let ok = if seen.prev == 0 {
        // This receiver's first: it follows what the earlier ones recorded, but for
        // a redelivery (a receiver died inside `recv_with` after recording) or
        // messages that dead receivers consumed without recording.
        let raw = ctl.last.load(SeqCst);
        let last = raw & !ZERO_COPY;
        let allowance = unrecorded_allowance(ctl, raw);
        match gap(ctl, last, cur) {
            Some(0) => true,
            _ if cur == last && raw & ZERO_COPY != 0 => {
                ctl.redelivered.fetch_add(1, SeqCst);
                true
            }
            Some(n) if n <= allowance => {
                ctl.unrecorded.fetch_add(n, SeqCst);
                true
            }
            _ => false,
        }
    } else {
        follows(ctl, seen.prev, cur)
    };
    if !ok {
        let code = if cur < seen.prev { ORDER } else { LOST };
        ctl.report(code, [seen.prev, cur, ctl.last.load(SeqCst), 0]);
    }
    seen.prev = cur;
    ctl.last
        .store(cur | if zero_copy { ZERO_COPY } else { 0 }, SeqCst);
    // (After `last`: a death in between only widens the allowance.)
    ctl.extra_gaps.store(0, SeqCst);
    ctl.received.fetch_add(1, SeqCst);
}

/// A number for an unexpected error, for the report.
fn error_code(e: Error) -> u64 {
    match e {
        Error::Corrupted => 1,
        Error::EndpointInUse { .. } => 2,
        Error::Closed => 3,
        Error::Timeout => 4,
        _ => 99,
    }
}

/// Where this process marks itself killed before a failpoint kills it: its `killed`
/// flag, and, if it dies right after claiming its end, the `claimed` word to set to
/// its generation (the test reads "who owns the end" from it).
#[cfg(shmkit_failpoints)]
struct Marks {
    killed: std::sync::atomic::AtomicPtr<AtomicU64>,
    claimed: std::sync::atomic::AtomicPtr<AtomicU64>,
    generation: AtomicU64,
}

#[cfg(shmkit_failpoints)]
static MARKS: Marks = Marks {
    killed: std::sync::atomic::AtomicPtr::new(std::ptr::null_mut()),
    claimed: std::sync::atomic::AtomicPtr::new(std::ptr::null_mut()),
    generation: AtomicU64::new(0),
};

#[cfg(shmkit_failpoints)]
fn mark_killed() {
    let (killed, claimed) = (MARKS.killed.load(SeqCst), MARKS.claimed.load(SeqCst));
    // SAFETY: `arm_failpoint` stored pointers into the control block, which stays
    // mapped for the life of the process.
    unsafe {
        if !killed.is_null() {
            (*killed).store(1, SeqCst);
        }
        if !claimed.is_null() {
            (*claimed).store(MARKS.generation.load(SeqCst), SeqCst);
        }
    }
}

/// Arms a random failpoint in this (child) process of `generation`, unless the run
/// is stopping, with `killed` as its mark, `claimed` to set if it dies right after
/// its claim, and `point` to tell the test which one.
fn arm_failpoint(ctl: &Ctl, marks: [&AtomicU64; 3], generation: u64, seed: u64) {
    #[cfg(shmkit_failpoints)]
    if ctl.stop.load(SeqCst) == 0 {
        let [killed, claimed, point] = marks;
        let points = shmkit::__failpoints::POINTS;
        let mut rng = Rng(mix(seed) | 1);
        let which = rng.below(points.len() as u64) as usize;
        let at_claim = points[which] == "connection.bind.claimed";
        MARKS
            .killed
            .store(std::ptr::from_ref(killed).cast_mut(), SeqCst);
        if at_claim {
            MARKS
                .claimed
                .store(std::ptr::from_ref(claimed).cast_mut(), SeqCst);
        }
        MARKS.generation.store(generation, SeqCst);
        point.store(which as u64 + 1, SeqCst);
        // A claim happens once per process: kill at the first.
        let countdown = if at_claim { 1 } else { 1 + rng.below(400) };
        shmkit::__failpoints::arm(points[which], countdown, mark_killed);
    }
    let _ = (ctl, marks, generation, seed);
}

/// Was any owner of an end killed from generation `from` (the owner when the call
/// began; 0: none yet) up to the one that owns it now? One that claimed during the
/// call may have died at once (the claim failpoint), so `Disconnected` is due then too.
fn killed_since(killed: &[AtomicU64], from: u64, claimed: &AtomicU64) -> bool {
    let now = claimed.load(SeqCst);
    (from.max(1)..=now).any(|g| killed[g as usize].load(SeqCst) != 0)
}

/// Claims (adopts) `end` once its last owner is dead, then says so in `claimed`.
fn claim<const CAP: usize>(end: &Connection<'_, CAP>, claimed: &AtomicU64, generation: u64) {
    while matches!(
        end.poll(Some(Duration::ZERO)),
        Err(Error::EndpointInUse { .. })
    ) {
        std::thread::sleep(Duration::from_micros(200));
    }
    claimed.store(generation, SeqCst);
}

/// A receiver process (generation `r`): adopts end 1 and receives until END. Even
/// generations receive in place (`recv_with`), odd ones copy out, with some
/// `try_recv`s for the edge check.
fn receiver<const CAP: usize>(pipe: &Pipe<CAP>, ctl: &Ctl, r: u64) -> i32 {
    let max = (CAP - 8).min(200);
    let marks = [
        &ctl.rx_killed[r as usize],
        &ctl.rx_claimed,
        &ctl.rx_point[r as usize],
    ];
    arm_failpoint(ctl, marks, r, r);
    let (_, rx) = pipe.ends();
    claim(&rx, &ctl.rx_claimed, r);
    let zero_copy = r % 2 == 0;
    if !zero_copy {
        ctl.extra_gaps.fetch_add(1, SeqCst);
    }
    let mut rng = Rng(mix(r) | 1);
    let mut seen = Seen { prev: 0 };
    let mut buf = [0u8; CAP];
    loop {
        // For the edge checks: who sends, and how many of its sends have returned,
        // before we ask.
        let sender = ctl.tx_claimed.load(SeqCst);
        let done_before = ctl.done[sender as usize].load(SeqCst);
        let got: Result<Option<u64>, Error> = if zero_copy {
            rx.recv_with(|m| {
                let id = check_message(m, max)?;
                if id != END {
                    record(ctl, &mut seen, id, true);
                    // Linger now and then: kills land inside `recv_with`.
                    if rng.below(8) == 0 {
                        let t = Instant::now();
                        while t.elapsed() < Duration::from_micros(30) {
                            std::hint::spin_loop();
                        }
                    }
                }
                Some(id)
            })
        } else if rng.below(3) == 0 {
            match rx.try_recv_bytes_into(&mut buf) {
                Err(Error::WouldBlock) => {
                    ctl.edge_checks.fetch_add(1, SeqCst);
                    // Every message of `sender` whose send returned before we asked
                    // has been received (one may be the one a dead receiver took
                    // without recording it).
                    let raw = ctl.last.load(SeqCst);
                    let last = raw & !ZERO_COPY;
                    let mut received = if gen_of(last) == sender {
                        index_of(last) + 1
                    } else {
                        0
                    };
                    if seen.prev == 0 {
                        received += unrecorded_allowance(ctl, raw);
                    }
                    if sender != 0 && done_before > received {
                        ctl.report(EMPTY_EDGE, [sender, done_before, seen.prev, raw]);
                        return 3;
                    }
                    continue;
                }
                other => other.map(|n| check_message(&buf[..n], max)),
            }
        } else {
            rx.recv_bytes_into(&mut buf)
                .map(|n| check_message(&buf[..n], max))
        };
        match got {
            Ok(Some(END)) => {
                ctl.ended.store(1, SeqCst);
                return 0;
            }
            Ok(Some(id)) => {
                if !zero_copy {
                    record(ctl, &mut seen, id, false);
                }
            }
            Ok(None) => ctl.report(TORN, [seen.prev, r, 0, 0]),
            Err(Error::Disconnected) => {
                if !killed_since(&ctl.tx_killed, sender, &ctl.tx_claimed)
                    && ctl.stop.load(SeqCst) == 0
                {
                    ctl.report(RX_DISCONNECTED, [sender, r, 0, 0]);
                }
                std::thread::sleep(Duration::from_micros(300));
            }
            Err(e) => ctl.report(ERROR, [r, error_code(e), 0, 0]),
        }
        if ctl.violation.load(SeqCst) != 0 {
            return 3;
        }
    }
}

/// A sender process (generation `g`): adopts end 0 and sends `(g, 0), (g, 1), ...`
/// until told to stop, then END until the receiver has it.
fn sender<const CAP: usize>(pipe: &Pipe<CAP>, ctl: &Ctl, g: u64) -> i32 {
    let max = (CAP - 8).min(200);
    let marks = [
        &ctl.tx_killed[g as usize],
        &ctl.tx_claimed,
        &ctl.tx_point[g as usize],
    ];
    arm_failpoint(ctl, marks, g, !g);
    let (tx, _) = pipe.ends();
    claim(&tx, &ctl.tx_claimed, g);
    let mut i = 0u64;
    // Every third generation sends in batches (`send_many`, 1 to 6 messages a call).
    let batched = g % 3 == 2;
    let mut rng = Rng(mix(!g) | 1);
    let mut bufs: Vec<Vec<u8>> = Vec::new();
    loop {
        let stopping = ctl.stop.load(SeqCst) != 0;
        let msg = if stopping { END } else { id(g, i) };
        let receiver = ctl.rx_claimed.load(SeqCst);
        let result = if batched && !stopping {
            let k = 1 + rng.below(6);
            bufs.clear();
            for j in 0..k {
                let m = id(g, i + j);
                let mut b = vec![0u8; message_len(m, max)];
                fill_message(m, &mut b);
                bufs.push(b);
            }
            let refs: Vec<&[u8]> = bufs.iter().map(Vec::as_slice).collect();
            tx.send_many(&refs).map(|n| {
                // All but the last of the batch count here; the last below.
                i += n as u64 - 1;
            })
        } else {
            tx.send_with(message_len(msg, max), |b| fill_message(msg, b))
        };
        match result {
            Ok(()) if stopping => {
                // Again until the receiver has it (one that died at a failpoint may
                // have taken an END with it).
                if ctl.ended.load(SeqCst) != 0 {
                    return 0;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            Ok(()) => {
                i += 1;
                ctl.done[g as usize].store(i, SeqCst);
            }
            Err(Error::Disconnected) => {
                // (The receiver that got END closes its end.)
                if ctl.ended.load(SeqCst) != 0 {
                    return 0;
                }
                if !killed_since(&ctl.rx_killed, receiver, &ctl.rx_claimed) {
                    ctl.report(TX_DISCONNECTED, [receiver, g, i, 0]);
                    return 3;
                }
                std::thread::sleep(Duration::from_micros(300));
            }
            Err(e) => {
                ctl.report(ERROR, [g, i, error_code(e), 1]);
                return 4;
            }
        }
    }
}

/// Sends `SIGSTOP`, waits, sends `SIGCONT`.
fn pause(p: &Process, d: Duration) {
    let pid = rustix::process::Pid::from_raw(p.pid()).unwrap();
    let _ = rustix::process::kill_process(pid, rustix::process::Signal::STOP);
    std::thread::sleep(d);
    let _ = rustix::process::kill_process(pid, rustix::process::Signal::CONT);
}

/// The two processes of a crash loop and what happened to them.
struct World<'a, const CAP: usize> {
    pipe: &'a Pipe<CAP>,
    ctl: &'a Ctl,
    start: Instant,
    tx: Child,
    rx: Child,
    /// Current generations.
    g: u64,
    r: u64,
    tx_kills: u64,
    rx_kills: u64,
    /// Failpoint index + 1 -> how often it killed its process.
    fired: std::collections::BTreeMap<u64, u64>,
}

impl<'a, const CAP: usize> World<'a, CAP> {
    fn new(pipe: &'a Pipe<CAP>, ctl: &'a Ctl) -> Self {
        let tx = Child::spawn(move || sender(pipe, ctl, 1));
        let rx = Child::spawn(move || receiver(pipe, ctl, 1));
        World {
            pipe,
            ctl,
            start: Instant::now(),
            tx,
            rx,
            g: 1,
            r: 1,
            tx_kills: 0,
            rx_kills: 0,
            fired: Default::default(),
        }
    }

    /// Which process, if any, is dead (it killed itself at a failpoint)?
    fn find_dead(&mut self) -> Option<bool> {
        if !self.tx.process().is_alive() {
            Some(true)
        } else if !self.rx.process().is_alive() {
            Some(false)
        } else {
            None
        }
    }

    /// Notes that the sender (or receiver) died at its failpoint.
    fn note_failpoint(&mut self, is_sender: bool) {
        let point = if is_sender {
            &self.ctl.tx_point[self.g as usize]
        } else {
            &self.ctl.rx_point[self.r as usize]
        };
        *self.fired.entry(point.load(SeqCst)).or_default() += 1;
    }

    /// Replaces the dead (or just killed) sender or receiver with a new process that
    /// adopts its end, and waits for the claim; the old one stays a zombie until
    /// then. A replacement that dies at its failpoint before claiming is replaced too.
    fn replace(&mut self, is_sender: bool) {
        let (pipe, ctl) = (self.pipe, self.ctl);
        loop {
            let (generation, old) = if is_sender {
                self.g += 1;
                self.tx_kills += 1;
                let generation = self.g;
                let child = Child::spawn(move || sender(pipe, ctl, generation));
                (generation, std::mem::replace(&mut self.tx, child))
            } else {
                self.r += 1;
                self.rx_kills += 1;
                let generation = self.r;
                let child = Child::spawn(move || receiver(pipe, ctl, generation));
                (generation, std::mem::replace(&mut self.rx, child))
            };
            let claimed = if is_sender {
                &ctl.tx_claimed
            } else {
                &ctl.rx_claimed
            };
            // Dead before it claimed: a failpoint fired first. (One that claimed may
            // have finished already — in the stop phase a replacement can get END
            // and exit before we look — so the claim is what counts.)
            let mut died = false;
            self.wait_for("claim", |w| {
                let alive = if is_sender {
                    w.tx.process().is_alive()
                } else {
                    w.rx.process().is_alive()
                };
                died = !alive && claimed.load(SeqCst) != generation;
                claimed.load(SeqCst) == generation || died
            });
            // The old process was killed (by the test or at its failpoint), never
            // ended any other way: a panic or a fault in the kit would show here.
            let killed = if is_sender {
                ctl.tx_killed[generation as usize - 1].load(SeqCst)
            } else {
                ctl.rx_killed[generation as usize - 1].load(SeqCst)
            };
            let status = old.join();
            assert!(
                status.signal() == Some(9) && killed == 1,
                "{} generation {} ended with {status} (killed flag {killed}): {}",
                if is_sender { "sender" } else { "receiver" },
                generation - 1,
                describe(ctl)
            );
            if !died {
                return;
            }
            self.note_failpoint(is_sender);
        }
    }

    /// Joins the ended sender (or receiver): `true` if it finished; else it was killed
    /// at its failpoint, and is replaced.
    fn finished(&mut self, is_sender: bool) -> bool {
        let child = if is_sender {
            &mut self.tx
        } else {
            &mut self.rx
        };
        let status = child.process().join().unwrap();
        if status.success() {
            return true;
        }
        assert!(
            status.signal().is_some(),
            "{status}: {}",
            describe(self.ctl)
        );
        self.note_failpoint(is_sender);
        self.replace(is_sender);
        false
    }

    /// Waits until `cond` holds (or a violation is reported) within the deadline.
    fn wait_for(&mut self, what: &str, mut cond: impl FnMut(&mut Self) -> bool) {
        let left = DEADLINE.saturating_sub(self.start.elapsed());
        let ctl = self.ctl;
        assert!(
            common::eventually(left, || cond(self) || ctl.violation.load(SeqCst) != 0),
            "no {what} within the deadline: {}",
            describe(ctl)
        );
        assert_eq!(ctl.violation.load(SeqCst), 0, "{}", describe(ctl));
    }
}

fn crash_loop<const CAP: usize>() {
    let kills = kills();
    let seed = env_seed("SHMKIT_PIPE_SEED");
    println!("pipe crash loop, Pipe<{CAP}>: {kills} kills, seed {seed}");
    let mut rng = Rng(seed);
    let pipe = Shared::new(Pipe::<CAP>::new()).unwrap();
    let ctl = Shared::<Ctl>::new_zeroed().unwrap();
    let (pipe, ctl) = (&*pipe, &*ctl);
    let mut w = World::new(pipe, ctl);
    let (mut asleep, mut pauses) = (0u64, 0u64);
    while w.tx_kills + w.rx_kills < kills {
        assert_eq!(ctl.violation.load(SeqCst), 0, "{}", describe(ctl));
        // With failpoints, a process may have killed itself: that one is the victim.
        let mut self_killed = None;
        if cfg!(shmkit_failpoints) {
            common::eventually(Duration::from_millis(3), || {
                self_killed = w.find_dead();
                self_killed.is_some()
            });
        }
        let kill_sender = self_killed.unwrap_or_else(|| rng.below(2) == 0);
        if self_killed.is_some() {
            w.note_failpoint(kill_sender);
        } else {
            // The shape of this round: run, pause the peer first (the victim then
            // sleeps: the receiver on an empty ring, the sender on a full one), or
            // pause someone and go on.
            let shape = rng.below(6);
            std::thread::sleep(Duration::from_micros(rng.below(1500)));
            let peer = if kill_sender { w.rx.pid() } else { w.tx.pid() };
            let peer = rustix::process::Pid::from_raw(peer).unwrap();
            if shape == 0 {
                // Pause the victim's peer until the victim sleeps, then kill it.
                let _ = rustix::process::kill_process(peer, rustix::process::Signal::STOP);
                std::thread::sleep(Duration::from_millis(3 + rng.below(5)));
                asleep += 1;
            } else if shape == 1 {
                let victim = if rng.below(2) == 0 {
                    w.tx.process()
                } else {
                    w.rx.process()
                };
                pause(victim, Duration::from_micros(200 + rng.below(3000)));
                pauses += 1;
            }
            if kill_sender {
                ctl.tx_killed[w.g as usize].store(1, SeqCst);
                w.tx.process().kill().unwrap();
            } else {
                ctl.rx_killed[w.r as usize].store(1, SeqCst);
                w.rx.process().kill().unwrap();
            }
            let _ = rustix::process::kill_process(peer, rustix::process::Signal::CONT);
        }
        w.replace(kill_sender);
        // Progress: messages keep flowing (or someone died, and is replaced next).
        if (w.tx_kills + w.rx_kills) % 20 == 0 {
            let before = ctl.received.load(SeqCst);
            w.wait_for("progress", |w| {
                ctl.received.load(SeqCst) > before || w.find_dead().is_some()
            });
        }
    }
    // Stop: the sender sends END (again and again, until the receiver has it), the
    // receiver gets everything before it. A process may still die at its failpoint
    // before it sees `stop`: replace it (replacements arm no failpoint now).
    ctl.stop.store(1, SeqCst);
    let mut sender_done = false;
    loop {
        w.wait_for("end", |w| {
            (!sender_done && !w.tx.process().is_alive()) || !w.rx.process().is_alive()
        });
        if !sender_done && !w.tx.process().is_alive() {
            sender_done = w.finished(true);
        } else if w.finished(false) {
            break;
        }
    }
    // The sender leaves once the receiver has END.
    w.wait_for("sender exit", |w| sender_done || !w.tx.process().is_alive());
    assert_eq!(ctl.violation.load(SeqCst), 0, "{}", describe(ctl));
    // Everything the senders sent arrived: as if a generation after the last one
    // followed the last message recorded — but for what receivers killed after their
    // last record consumed without recording (the receiver that got END may have had
    // nothing else to record, so no first-record check covered that gap).
    let raw = ctl.last.load(SeqCst);
    let last = raw & !ZERO_COPY;
    let g = w.g;
    let missing = gap(ctl, last, id(g + 1, 0));
    let allowance = unrecorded_allowance(ctl, raw);
    assert!(
        missing.is_some_and(|n| n <= allowance),
        "lost at the end: last {last:#x}, {missing:?} missing after it (allowance          {allowance}); generation {} sent {}",
        gen_of(last),
        ctl.done[gen_of(last) as usize].load(SeqCst)
    );
    assert!(ctl.received.load(SeqCst) > 0);
    println!(
        "Pipe<{CAP}>: {} kills ({} senders, {} receivers; {asleep} killed asleep; at \
         failpoints: {}), {pauses} pauses; {} messages received intact, in order; {} \
         redelivered after a receiver died inside recv_with, {} consumed by a receiver that \
         died before recording; {} WouldBlock edges checked; {:?}",
        w.tx_kills + w.rx_kills,
        w.tx_kills,
        w.rx_kills,
        failpoints_fired(&w.fired),
        ctl.received.load(SeqCst),
        ctl.redelivered.load(SeqCst),
        ctl.unrecorded.load(SeqCst),
        ctl.edge_checks.load(SeqCst),
        w.start.elapsed()
    );
}

/// "name count, ..." for the failpoints that fired.
fn failpoints_fired(fired: &std::collections::BTreeMap<u64, u64>) -> String {
    #[cfg(shmkit_failpoints)]
    let name = |i: u64| shmkit::__failpoints::POINTS[i as usize - 1];
    #[cfg(not(shmkit_failpoints))]
    let name = |_: u64| "";
    if fired.is_empty() {
        return "none".into();
    }
    let parts: Vec<String> = fired
        .iter()
        .map(|(&i, n)| format!("{} {n}", name(i)))
        .collect();
    parts.join(", ")
}

fn describe(ctl: &Ctl) -> String {
    let d: Vec<String> = ctl
        .detail
        .iter()
        .map(|d| format!("{:#x}", d.load(SeqCst)))
        .collect();
    format!(
        "violation {} ({}) details [{}]; last {:#x}",
        ctl.violation.load(SeqCst),
        match ctl.violation.load(SeqCst) {
            0 => "none",
            TORN => "torn or corrupted message",
            ORDER => "out of order",
            LOST => "lost or duplicated",
            EMPTY_EDGE => "WouldBlock with a completed send not received",
            RX_DISCONNECTED => "receiver saw Disconnected from a live sender",
            TX_DISCONNECTED => "sender saw Disconnected from a live receiver",
            _ => "unexpected error",
        },
        d.join(", "),
        ctl.last.load(SeqCst)
    )
}

#[test]
fn pipe64_kills_of_both_sides() {
    crash_loop::<64>();
}

#[test]
fn pipe256_kills_of_both_sides() {
    crash_loop::<256>();
}
