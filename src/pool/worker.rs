//! A worker process's life: its loop over its mailbox, and the panic hook every worker
//! runs (installed once in the zygote, inherited by each fork).

use core::fmt::Write as _;
use core::time::Duration;
use std::boxed::Box;
use std::panic::PanicHookInfo;

use super::hub::Hub;
use super::mailbox::{EXIT, Mailbox};
use super::task;
use crate::primitive::Deadline;

/// Exit code of a worker whose initializer panicked.
pub(crate) const EXIT_INIT_PANICKED: i32 = 102;
/// Exit code of a worker (or zygote) that found its parent gone.
pub(crate) const EXIT_ORPHANED: i32 = 103;

/// How often an idle worker checks that its parent (the zygote) still lives.
const PARENT_CHECK: Duration = Duration::from_millis(500);

/// A worker's whole life: run the initializer, then take chunks from `mailbox` until
/// told to exit, told to retire, or orphaned. Returns the exit code.
///
/// Fork safety: it touches only the two shared structures, the futex, the user's
/// initializer and tasks, `getppid`, and (on a panic) the hook below, which writes with
/// raw `write(2)` — no lock another thread of the parent could have held when the
/// zygote was forked.
pub(crate) fn worker_main(
    mailbox: &Mailbox,
    hub: &Hub,
    initializer: Option<fn()>,
    parent: i32,
    key: u64,
) -> i32 {
    if let Some(init) = initializer {
        if std::panic::catch_unwind(init).is_err() {
            return EXIT_INIT_PANICKED;
        }
    }
    mailbox.mark_started();
    loop {
        match mailbox.wait_for_work(Deadline::after(PARENT_CHECK)) {
            Some(EXIT) => return 0,
            Some(_) => {
                let retire = mailbox.run(key);
                hub.bump();
                if retire {
                    return 0;
                }
            }
            None => {
                #[cfg(not(shmkit_loom))]
                if crate::sys::proc::parent_pid() != parent {
                    return EXIT_ORPHANED;
                }
                #[cfg(shmkit_loom)]
                let _ = parent;
            }
        }
    }
}

/// Makes [`panic_hook`] this process's panic hook. Called once in the zygote, right
/// after it is forked, before it forks any worker.
///
/// The previous hook (the parent's, which may take any lock) is leaked rather than
/// dropped: its destructor is the parent's code. Neither call allocates: both hooks
/// are zero-sized.
pub(crate) fn install_panic_hook() {
    core::mem::forget(std::panic::take_hook());
    std::panic::set_hook(Box::new(panic_hook));
}

/// The workers' panic hook: one line to stderr, formatted on the stack and written with
/// raw `write(2)` — never `std`'s locked stderr, whose lock some thread of the parent may
/// have held when the zygote was forked. The text also goes back to the parent in the
/// task's `PoolError::TaskPanicked`.
fn panic_hook(info: &PanicHookInfo<'_>) {
    let mut line = Line::default();
    let _ = write!(
        line,
        "shmkit pool worker {} panicked",
        crate::sys::ids::pid()
    );
    if let Some(at) = info.location() {
        let _ = write!(line, " at {at}");
    }
    let _ = write!(line, ": {}", task::panic_text(info.payload()));
    line.finish();
    crate::sys::fds::write_stderr(line.as_bytes());
}

/// A line of at most `Line::CAPACITY` bytes, cut (at a character boundary) when longer.
struct Line {
    buf: [u8; Line::CAPACITY],
    len: usize,
}

impl Line {
    const CAPACITY: usize = 1024;

    /// Ends the line with a newline, even a full one.
    fn finish(&mut self) {
        if self.len == Self::CAPACITY {
            self.len -= 1;
            // Back off to a character boundary (continuation bytes are 0b10xx_xxxx).
            while self.len > 0 && self.buf[self.len] & 0xc0 == 0x80 {
                self.len -= 1;
            }
        }
        self.buf[self.len] = b'\n';
        self.len += 1;
    }

    fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl Default for Line {
    fn default() -> Self {
        Line {
            buf: [0; Line::CAPACITY],
            len: 0,
        }
    }
}

impl core::fmt::Write for Line {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let (n, _) = crate::text::copy_text(s, &mut self.buf[self.len..]);
        self.len += n;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn miri_a_line_is_cut_at_a_char_boundary_and_ends_with_a_newline() {
        let mut line = Line::default();
        let _ = write!(line, "abc {}", 7);
        line.finish();
        assert_eq!(line.as_bytes(), b"abc 7\n");
        let mut line = Line::default();
        for _ in 0..Line::CAPACITY {
            let _ = line.write_str("é");
        }
        line.finish();
        let text = core::str::from_utf8(line.as_bytes()).unwrap();
        assert!(text.ends_with("é\n") && text.len() <= Line::CAPACITY);
    }
}
