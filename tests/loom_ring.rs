//! Loom models of the byte ring under `Pipe`/`Connection`: records that wrap with a
//! padding record, blocking on a full and an empty ring (the sleep/wake protocol: a
//! lost wake-up would be reported as a deadlock), close racing with send and recv,
//! a sender killed in the middle of a record, headers written over the payload bytes
//! of an earlier lap (the real byte layout: under loom the data array is one atomic
//! per 8-byte word, shared by header and payload accesses), and adoption of a dead
//! owner's end: `recover_tail` after a sender died between its header and `tail`
//! stores, a receiver that died asleep, two adopters racing.
//!
//! Each model of the protocol steps added for issues 10, 11 and 15 fails when its
//! step is removed; the step is named in the model's docs.
//!
//! Run with `RUSTFLAGS="--cfg shmkit_loom" CARGO_TARGET_DIR=target/loom
//! LOOM_MAX_PREEMPTIONS=3 cargo test --release --test loom_ring`.
#![cfg(shmkit_loom)]

use loom::sync::Arc;
use loom::thread;
use shmkit::{Connection, Error, Pipe};

/// Receives one message into a vector, blocking.
fn recv_vec<const CAP: usize>(c: &Connection<'_, CAP>) -> Result<Vec<u8>, Error> {
    let mut buf = [0u8; 64];
    let n = c.recv_bytes_into(&mut buf)?;
    Ok(buf[..n].to_vec())
}

/// Runs `f` on a new model thread with a handle on the pipe.
fn spawn_on<R: 'static>(
    pipe: &Arc<Pipe<64>>,
    f: impl FnOnce(&Pipe<64>) -> R + 'static,
) -> thread::JoinHandle<R> {
    let pipe = pipe.clone();
    thread::spawn(move || f(&pipe))
}

fn msg(tag: u8, len: usize) -> Vec<u8> {
    (0..len).map(|j| tag.wrapping_add(j as u8)).collect()
}

/// Three messages through a 64-byte ring: 32 + 24 bytes of records, then one that
/// needs an 8-byte padding record and the space of the first. Both sides block.
#[test]
fn wrap_with_padding_and_blocking_both_ways() {
    loom::model(|| {
        let pipe = Arc::new(Pipe::<64>::new());
        let producer = spawn_on(&pipe, move |pipe| {
            let (a, _) = pipe.ends();
            a.send_bytes(&msg(1, 20)).unwrap();
            a.send_bytes(&msg(2, 12)).unwrap();
            a.send_bytes(&msg(3, 20)).unwrap();
        });
        let (_, b) = pipe.ends();
        let mut buf = [0u8; 64];
        for (tag, len) in [(1, 20), (2, 12), (3, 20)] {
            let n = b.recv_bytes_into(&mut buf).unwrap();
            assert_eq!(&buf[..n], &msg(tag, len)[..]);
        }
        producer.join().unwrap();
        // The producer's handle dropped: closed.
        assert_eq!(b.recv_bytes_into(&mut buf), Err(Error::Disconnected));
    });
}

/// The sender closes right after sending; the blocked receiver gets the message,
/// then `Disconnected`.
#[test]
fn close_races_with_recv() {
    loom::model(|| {
        let pipe = Arc::new(Pipe::<64>::new());
        let producer = spawn_on(&pipe, move |pipe| {
            let (a, _) = pipe.ends();
            a.send(&7u64).unwrap();
            a.close();
        });
        let (_, b) = pipe.ends();
        assert_eq!(b.recv::<u64>(), Ok(7));
        assert_eq!(b.recv::<u64>(), Err(Error::Disconnected));
        producer.join().unwrap();
    });
}

/// The receiver closes while the sender is (about to be) blocked on a full ring:
/// the sender wakes with `Disconnected`.
#[test]
fn close_races_with_blocked_send() {
    loom::model(|| {
        let pipe = Arc::new(Pipe::<64>::new());
        let receiver = spawn_on(&pipe, move |pipe| {
            let (_, b) = pipe.ends();
            // Claim the end (so that closing it counts), then close.
            assert!(b.poll(Some(core::time::Duration::ZERO)).is_ok());
            b.close();
        });
        let (a, _) = pipe.ends();
        let first = a.send_bytes(&[0u8; 56]);
        assert!(
            first == Ok(()) || first == Err(Error::Disconnected),
            "{first:?}"
        );
        assert_eq!(a.send_bytes(&[1u8; 8]), Err(Error::Disconnected));
        receiver.join().unwrap();
    });
}

/// A sender killed while writing its second record: the receiver gets the first,
/// never the half-written second, then `Disconnected`.
#[test]
fn half_written_record_is_never_delivered() {
    loom::model(|| {
        let pipe = Arc::new(Pipe::<64>::new());
        let producer = spawn_on(&pipe, move |pipe| {
            let (a, _) = pipe.ends();
            a.send_bytes(&msg(5, 8)).unwrap();
            a.__loom_die_mid_send(16);
        });
        let (_, b) = pipe.ends();
        let mut buf = [0u8; 64];
        // Concurrently with the sender: the first message or nothing yet.
        let mut got_first = match b.try_recv_bytes_into(&mut buf) {
            Ok(n) => {
                assert_eq!(&buf[..n], &msg(5, 8)[..]);
                true
            }
            Err(e) => {
                assert_eq!(e, Error::WouldBlock);
                false
            }
        };
        producer.join().unwrap();
        if !got_first {
            let n = b.try_recv_bytes_into(&mut buf).unwrap();
            assert_eq!(&buf[..n], &msg(5, 8)[..]);
            got_first = true;
        }
        assert!(got_first);
        assert_eq!(b.try_recv_bytes_into(&mut buf), Err(Error::Disconnected));
    });
}

/// Headers over reused payload bytes (the real byte layout). In a 64-byte ring: A (20
/// bytes, record [0, 32)), B (12, [32, 56)), then C (4) pads [56, 64) and goes to
/// [0, 16), D (4) to [16, 32). C's successor header word, at 16, held A's payload
/// (non-zero bytes): the consumer finds "nothing yet" there only because C's publish
/// zeroed it first; D's at 32 held B's header.
///
/// Fails when the zero-ahead store in `publish_header` is removed (the consumer reads
/// A's stale payload as a header: `Corrupted`), and when the slack is not kept
/// (`room_needed` = the record alone: the zeroing hits bytes the consumer still
/// reads, a race loom reports, or an unread header, a deadlock).
#[test]
fn headers_over_reused_payload_bytes() {
    loom::model(|| {
        let pipe = Arc::new(Pipe::<64>::new());
        let producer = spawn_on(&pipe, move |pipe| {
            let (a, _) = pipe.ends();
            for (tag, len) in [(0x11, 20), (0x22, 12), (0x33, 4), (0x44, 4)] {
                a.send_bytes(&msg(tag, len)).unwrap();
            }
        });
        let (_, b) = pipe.ends();
        for (tag, len) in [(0x11, 20), (0x22, 12), (0x33, 4), (0x44, 4)] {
            assert_eq!(recv_vec(&b), Ok(msg(tag, len)));
        }
        producer.join().unwrap();
        assert_eq!(recv_vec(&b), Err(Error::Disconnected));
    });
}

/// Issue 10, defect 7, in the model: a sender publishes m1, then dies after storing
/// m2's header but before storing `tail`; the receiver runs concurrently (and may
/// consume m2 before anyone adopts, putting `head` past `tail`); a second sender
/// adopts the end afterwards and sends m3. The receiver gets m1, m2, m3 (and
/// `Disconnected` only between the death and the adoption), never `Corrupted`.
///
/// Fails when `recover_tail` does not start from `head` when the consumer is ahead
/// (the adopter's send reports `Corrupted`).
#[test]
fn adoption_after_a_sender_died_between_header_and_tail() {
    loom::model(|| {
        let pipe = Arc::new(Pipe::<64>::new());
        let first = spawn_on(&pipe, move |pipe| {
            let (a, _) = pipe.ends();
            a.send_bytes(&msg(1, 8)).unwrap();
            assert!(a.__loom_die_after_publish(8, 2));
        });
        let receiver = spawn_on(&pipe, move |pipe| {
            let (_, b) = pipe.ends();
            let mut got = Vec::new();
            while got.len() < 3 {
                match recv_vec(&b) {
                    Ok(m) => got.push(m),
                    // The first sender is dead and the second not there yet.
                    Err(Error::Disconnected) => thread::yield_now(),
                    Err(e) => panic!("{e:?} after {got:?}"),
                }
            }
            assert_eq!(got, vec![msg(1, 8), vec![2; 8], msg(3, 8)]);
        });
        first.join().unwrap();
        let (a2, _) = pipe.ends();
        assert_eq!(a2.send_bytes(&msg(3, 8)), Ok(()));
        receiver.join().unwrap();
    });
}

/// Issue 11, item 4, in the model: a receiver dies announced asleep on its end's
/// "data" notifier; a new process adopts the end and receives two messages that a
/// sender sends concurrently, sleeping on that notifier itself (a lost wake-up would
/// be a deadlock). Afterwards nobody is counted asleep.
///
/// Fails when the adopter does not reset the dead owner's sleepers (`reset_sleepers`
/// in `bind_slow`): the count stays one too high.
#[test]
fn adopting_the_end_of_a_receiver_killed_asleep() {
    loom::model(|| {
        let pipe = Arc::new(Pipe::<64>::new());
        spawn_on(&pipe, |pipe| pipe.ends().1.__loom_die_asleep_receiving())
            .join()
            .unwrap();
        assert_eq!(pipe.__loom_sleepers(0), (true, false));
        let sender = spawn_on(&pipe, move |pipe| {
            let (a, _) = pipe.ends();
            a.send(&1u64).unwrap();
            a.send(&2u64).unwrap();
            // Keep the end open until the receiver is done.
            std::mem::forget(a);
        });
        let (_, b) = pipe.ends();
        assert_eq!(b.recv::<u64>(), Ok(1));
        assert_eq!(b.recv::<u64>(), Ok(2));
        sender.join().unwrap();
        assert_eq!(pipe.__loom_sleepers(0), (false, false));
        assert_eq!(pipe.__loom_sleepers(1), (false, false));
    });
}

/// Two processes race to adopt a dead sender's end: exactly one gets it, the other
/// is refused, and the receiver gets exactly the winner's message.
///
/// Fails when the claim is not a compare-and-swap on the owner word (both win).
#[test]
fn two_adopters_race_for_a_dead_owners_end() {
    loom::model(|| {
        let pipe = Arc::new(Pipe::<64>::new());
        spawn_on(&pipe, |pipe| pipe.ends().0.__loom_die_mid_send(8))
            .join()
            .unwrap();
        let adopters: Vec<_> = (0..2u8)
            .map(|i| {
                spawn_on(&pipe, move |pipe| {
                    let (a, _) = pipe.ends();
                    let r = a.try_send_bytes(&[10 + i; 8]);
                    std::mem::forget(a); // stays open
                    r
                })
            })
            .collect();
        let results: Vec<_> = adopters.into_iter().map(|t| t.join().unwrap()).collect();
        let won: Vec<usize> = (0..2).filter(|&i| results[i] == Ok(())).collect();
        assert_eq!(won.len(), 1, "{results:?}");
        assert!(
            results
                .iter()
                .any(|r| matches!(r, Err(Error::EndpointInUse { .. }))),
            "{results:?}"
        );
        let (_, b) = pipe.ends();
        assert_eq!(recv_vec(&b), Ok(vec![10 + won[0] as u8; 8]));
        let mut buf = [0u8; 8];
        assert_eq!(b.try_recv_bytes_into(&mut buf), Err(Error::WouldBlock));
    });
}
