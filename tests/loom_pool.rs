//! Loom model of the pool's mailbox hand-over: the parent posts chunks and sleeps on
//! the pool-wide hub; the worker (its real loop) sleeps on the mailbox, runs each chunk
//! and bumps the hub. A lost wake-up on either side is a reported deadlock.
#![cfg(shmkit_loom)]

use loom::sync::Arc;
use shmkit::__loom_pool::{
    new_hub, new_mailbox, post_doubles, request_exit, wait_and_collect, worker,
};

#[test]
fn two_chunks_then_exit_are_handed_over_without_a_lost_wake_up() {
    loom::model(|| {
        let mb = Arc::new(new_mailbox());
        let hub = Arc::new(new_hub());
        let w = {
            let (mb, hub) = (mb.clone(), hub.clone());
            loom::thread::spawn(move || worker(&mb, &hub))
        };
        post_doubles(&mb, &[1, 2]);
        assert_eq!(wait_and_collect(&mb, &hub, 2), [2, 4]);
        post_doubles(&mb, &[7]);
        assert_eq!(wait_and_collect(&mb, &hub, 1), [14]);
        request_exit(&mb);
        assert_eq!(w.join().unwrap(), 0);
    });
}
