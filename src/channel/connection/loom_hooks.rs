//! Loom models only: a handle that dies at a chosen point of the real code paths
//! (`primitive::loom_die`, then no more kit code runs on that model thread).

use super::super::pipe::Pipe;
use super::Connection;

impl<const CAP: usize> Connection<'_, CAP> {
    /// Writes a message of `len` bytes into the ring without publishing it, then dies
    /// (a `kill -9` in the middle of a send).
    #[doc(hidden)]
    pub fn __loom_die_mid_send(self, len: usize) {
        if self.bind().is_ok() {
            if let Ok(Some(r)) = self.tx().try_reserve(&self.head_cache, len) {
                let _ = self.tx().fill(&r, |b| b.fill(0xee));
            }
        }
        self.die();
    }

    /// Sends a message of `len` bytes filled with `byte` up to the store of its
    /// header, and dies before storing `tail` (issue 10, defect 7's state). Returns
    /// whether it got that far (the ring may be full).
    #[doc(hidden)]
    pub fn __loom_die_after_publish(self, len: usize, byte: u8) -> bool {
        let mut published = false;
        if self.bind().is_ok() {
            if let Ok(Some(r)) = self.tx().try_reserve(&self.head_cache, len) {
                if self.tx().fill(&r, |b| b.fill(byte)).is_ok() {
                    self.tx().loom_publish_without_tail(r);
                    published = true;
                }
            }
        }
        self.die();
        published
    }

    /// Claims the end, announces itself asleep waiting for data (the real first
    /// step of a blocking receive's sleep), and dies there: a receiver killed asleep.
    #[doc(hidden)]
    pub fn __loom_die_asleep_receiving(self) {
        if self.bind().is_ok() {
            let _ = self.rx().wake.0.data.begin_sleep();
        }
        self.die();
    }

    fn die(self) {
        crate::primitive::loom_die();
        core::mem::forget(self);
    }
}

impl<const CAP: usize> Pipe<CAP> {
    /// Loom models only: is anyone announced asleep on ring `ring`'s notifiers
    /// `(data, space)`?
    #[doc(hidden)]
    pub fn __loom_sleepers(&self, ring: usize) -> (bool, bool) {
        let wake = &self.rings[ring & 1].wake.0;
        (wake.data.has_sleepers(), wake.space.has_sleepers())
    }
}
