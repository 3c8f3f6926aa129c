//! The mailbox hand-over, for the loom model in `tests/loom_pool.rs`. Exists only
//! under `--cfg shmkit_loom`; not part of the API.

#[doc(hidden)]
pub mod __loom_pool {
    pub use crate::pool::hub::Hub;
    pub use crate::pool::mailbox::Mailbox;
    use crate::pool::{calls, mailbox, task};
    use std::vec::Vec;

    /// The key the model's parent and worker share.
    pub const KEY: u64 = 0x5eed;

    fn double(x: u32) -> u64 {
        u64::from(x) * 2
    }

    pub fn new_mailbox() -> Mailbox {
        Mailbox::new()
    }

    pub fn new_hub() -> Hub {
        Hub::new()
    }

    /// The worker's whole loop (no initializer; the parent-death check never fires
    /// under loom, where non-zero timeouts never expire).
    pub fn worker(mb: &Mailbox, hub: &Hub) -> i32 {
        crate::pool::worker::worker_main(mb, hub, None, 0, KEY)
    }

    /// The parent posts `items` as one chunk of `double`.
    pub fn post_doubles(mb: &Mailbox, items: &[u32]) {
        let spec = calls::map_spec::<u32, u64>(double);
        let input: Vec<u8> = items.iter().flat_map(|x| x.to_ne_bytes()).collect();
        mb.post(&mailbox::Post {
            trampoline: spec.trampoline,
            func: spec.func,
            sig: spec.sig,
            tag: task::tag(KEY, spec.trampoline, spec.func, spec.sig),
            in_size: 4,
            out_size: 8,
            input: &input,
            count: items.len(),
            retire: false,
        });
    }

    /// The parent's wait, as `Pool::drive` does it: read the completion count, look
    /// at the mailbox, sleep on the hub until the count moves. Then collects.
    pub fn wait_and_collect(mb: &Mailbox, hub: &Hub, n: usize) -> Vec<u64> {
        loop {
            let seen = hub.completions();
            if mb.state() == mailbox::DONE {
                break;
            }
            hub.wait_change(seen, crate::primitive::Deadline::NEVER);
        }
        let mut status = std::vec![0u8; n];
        let mut out = std::vec![0u8; n * 8];
        assert!(matches!(
            mb.collect(&mut status, &mut out),
            mailbox::Collected::Ran
        ));
        assert!(status.iter().all(|&s| s == task::ITEM_OK));
        out.chunks(8)
            .map(|c| u64::from_ne_bytes(c.try_into().unwrap()))
            .collect()
    }

    pub fn request_exit(mb: &Mailbox) {
        mb.request_exit();
    }
}
