//! In-process tests of the queue's protocol, with states written by hand where a
//! crash or a stalled process would leave them (the claimer here is this live
//! process; `tests/queue_crash.rs` kills real ones).

use super::state::{READING, State, WRITING};
use super::*;
use crate::primitive::my_process_id;

fn set<T: Pod, const N: usize>(q: &Queue<T, N>, index: usize, state: State) {
    q.slots[index].state.store(state.0, Ordering::Relaxed);
}

/// A queue of capacity `N` holding 1, 2, … `n` (put in order).
fn holding<const N: usize>(n: u64) -> Queue<u64, N> {
    let q = Queue::<u64, N>::new();
    for i in 1..=n {
        q.try_put(i).unwrap();
    }
    q
}

fn set_value<T: Pod, const N: usize>(q: &mut Queue<T, N>, index: usize, value: T) {
    *q.slots[index].value.get_mut() = value;
}

#[test]
fn fifo_wraps_many_laps() {
    let q = Queue::<u32, 3>::new();
    for round in 0..100u32 {
        for i in 0..3 {
            q.try_put(round * 3 + i).unwrap();
        }
        assert_eq!(q.try_put(7), Err(PutError::Full(7)));
        assert!(q.is_full());
        for i in 0..3 {
            assert_eq!(q.try_get(), Ok(round * 3 + i));
        }
        assert_eq!(q.try_get(), Err(GetError::Empty));
    }
    assert_eq!(q.lost(), 0);
}

#[test]
fn corrupted_state_is_reported() {
    let q = Queue::<u64, 4>::new();
    q.try_put(1).unwrap();
    // A claim without a claimer: impossible.
    set(&q, 0, State::claim(READING, 0, 0));
    assert_eq!(q.try_get(), Err(GetError::Corrupted));
    // A claim by the never-id ID_MASK.
    set(&q, 0, State::claim(WRITING, 0, crate::primitive::ID_MASK));
    assert_eq!(q.try_get(), Err(GetError::Corrupted));
    // A slot two laps ahead of the head, beyond what the tail has claimed.
    set(&q, 0, State::full(2));
    assert_eq!(q.try_get(), Err(GetError::Corrupted));
    // An older lap at the tail.
    set(&q, 0, State::full(0));
    q.try_get().unwrap();
    set(&q, 1, State::claim(READING, 0, 1));
    q.tail.0.store(9, Ordering::Relaxed);
    assert_eq!(q.try_put(9), Err(PutError::Corrupted(9)));
    // Indices far apart from the slots: every call still returns.
    q.tail.0.store(u64::MAX - 3, Ordering::Relaxed);
    assert!(q.try_put(9).is_err());
    q.head.0.store(u64::MAX - 1, Ordering::Relaxed);
    assert!(q.try_get().is_err());
    assert!(q.get_timeout(Duration::from_millis(1)).is_err());
}

/// Issue 10, defect 1: the head is at position 3, whose producer died and whose slot
/// a producer one lap on reclaimed and reused (position 7 is there, full). The
/// consumer passes position 3 and delivers 4, 5, 6, 7.
#[test]
fn a_later_lap_at_the_head_means_passed() {
    let mut q = Queue::<u64, 4>::new();
    for i in 0..3 {
        q.try_put(i).unwrap();
    }
    for i in 0..3 {
        assert_eq!(q.try_get(), Ok(i));
    }
    // Position 3: claimed, then (its claimer dead) reclaimed and reused for 7.
    q.tail.0.store(4, Ordering::Relaxed);
    for i in 4..7 {
        q.try_put(i).unwrap();
    }
    set(&q, 3, State::full(1));
    set_value(&mut q, 3, 7);
    q.tail.0.store(8, Ordering::Relaxed);
    for i in 4..8 {
        assert_eq!(q.try_get(), Ok(i));
    }
    assert_eq!(q.try_get(), Err(GetError::Empty));
    // The same with the slot being written (by this live process) or read one lap on.
    for (state, expect) in [
        (
            State::claim(WRITING, 2, my_process_id()),
            Err(GetError::Empty),
        ),
        (
            State::claim(READING, 2, my_process_id()),
            Err(GetError::Empty),
        ),
        (State::free(3), Err(GetError::Empty)),
    ] {
        let q = Queue::<u64, 4>::new();
        q.tail.0.store(11, Ordering::Relaxed);
        q.head.0.store(7, Ordering::Relaxed);
        for i in 0..3 {
            set(&q, i, State::free(2));
        }
        set(&q, 3, state);
        assert_eq!(q.try_get(), expect, "{state:?}");
        assert_eq!(q.head.0.load(Ordering::Relaxed), 8);
    }
}

/// Issue 10, defect 2: position 0 is held by a live producer's put in progress (this
/// process, so it never finishes), and position 1 is complete behind it. `try_get`
/// must not say `Empty`: it waits its bounded time, then says `Stalled`.
#[test]
fn try_get_behind_a_put_in_progress_is_stalled_not_empty() {
    let q = holding::<4>(2);
    set(&q, 0, State::claim(WRITING, 0, my_process_id()));
    let start = std::time::Instant::now();
    assert_eq!(q.try_get(), Err(GetError::Stalled));
    assert!(start.elapsed() >= ops::STALL_WAIT);
    assert_eq!(
        q.get_timeout(Duration::from_millis(5)),
        Err(GetError::Stalled)
    );
    // Nothing complete behind it: empty (the put may take effect later).
    let q = holding::<4>(2);
    set(&q, 0, State::claim(WRITING, 0, my_process_id()));
    set(&q, 1, State::claim(WRITING, 0, my_process_id()));
    assert_eq!(q.try_get(), Err(GetError::Empty));
    assert_eq!(
        q.get_timeout(Duration::from_millis(2)),
        Err(GetError::Timeout)
    );
    // The put publishes: both come out in order.
    set(&q, 0, State::full(0));
    set(&q, 1, State::full(0));
    assert_eq!((q.try_get(), q.try_get()), (Ok(1), Ok(2)));
}

/// The mirror of defect 2: the slot the next put needs is held by a live consumer's
/// get in progress, while a later position was consumed already: not `Full`.
#[test]
fn try_put_behind_a_get_in_progress_is_stalled_not_full() {
    let q = holding::<2>(2);
    // Position 0 being read (by us: never finishes); position 1 consumed.
    set(&q, 0, State::claim(READING, 0, my_process_id()));
    q.head.0.store(1, Ordering::Relaxed);
    assert_eq!(q.try_get(), Ok(2));
    assert_eq!(q.try_put(3), Err(PutError::Stalled(3)));
    assert_eq!(
        q.put_timeout(4, Duration::from_millis(2)),
        Err(PutError::Stalled(4))
    );
    // Position 1 not consumed: still not full (the get in progress has taken its
    // item: `Empty` answers count it so, and `Full` must agree).
    let q = holding::<2>(2);
    set(&q, 0, State::claim(READING, 0, my_process_id()));
    q.head.0.store(1, Ordering::Relaxed);
    assert_eq!(q.try_put(3), Err(PutError::Stalled(3)));
    // The newest position still being written: not full either.
    let q = holding::<2>(2);
    set(&q, 1, State::claim(WRITING, 0, my_process_id()));
    assert_eq!(q.try_put(3), Err(PutError::Stalled(3)));
    // An older one being written, the newest complete: full.
    let q = holding::<2>(2);
    set(&q, 0, State::claim(WRITING, 0, my_process_id()));
    assert_eq!(q.try_put(3), Err(PutError::Full(3)));
    assert_eq!(
        q.put_timeout(4, Duration::from_millis(2)),
        Err(PutError::Timeout(4))
    );
}

#[test]
fn a_walk_over_later_laps_is_bounded_by_the_tail() {
    // Every slot a lap ahead, but the tail says nothing was claimed there.
    let q = Queue::<u64, 3>::new();
    for i in 0..3 {
        set(&q, i, State::full(1));
    }
    assert_eq!(q.try_get(), Err(GetError::Corrupted));
    // With a tail that covers them, they are passed (and then taken).
    q.tail.0.store(6, Ordering::Relaxed);
    assert_eq!(q.try_get(), Ok(0));
    assert_eq!(q.head.0.load(Ordering::Relaxed), 4);
}
