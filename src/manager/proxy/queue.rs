//! Queue and JoinableQueue proxies.

use core::time::Duration;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{enc, proxy, unit, value};
use crate::manager::protocol::{Bytes, Kind, Op, Wait};
use crate::manager::{Error, Manager};

proxy! {
    /// A proxy for a manager queue (Python's `manager.Queue(maxsize)`), bounded or not.
    ///
    /// Blocking calls wait on the server, which keeps the client informed (heartbeats)
    /// and serves other clients meanwhile. A blocked `get` whose client dies ends
    /// without taking anything; an item taken for a client whose socket is found closed
    /// when the reply is sent goes back to the front of the queue. (A client that dies
    /// after its reply was handed to the kernel or to the pipe loses that item, as with
    /// Python's managers.)
    ///
    /// ```
    /// let m = shmkit::Manager::start()?;
    /// let q = m.queue::<String>("work", 2)?;
    /// q.put(&"a".into())?;
    /// q.put(&"b".into())?;
    /// assert!(matches!(q.try_put(&"c".into()), Err(shmkit::manager::Error::WouldBlock)));
    /// assert_eq!(q.get()?, "a");
    /// # Ok::<(), shmkit::manager::Error>(())
    /// ```
    pub struct Queue<T> = Kind::Queue;
}

proxy! {
    /// A [`Queue`] whose consumers mark items done, so that producers can
    /// [`join`](JoinableQueue::join) (Python's `manager.JoinableQueue()`).
    pub struct JoinableQueue<T> = Kind::JoinableQueue;
}

impl Manager {
    /// The queue `name`, created holding at most `maxsize` items (0: unbounded) if
    /// it does not exist.
    ///
    /// # Errors
    ///
    /// [`Error::WrongKind`] if `name` is another kind of object; as any call.
    pub fn queue<T>(&self, name: &str, maxsize: usize) -> Result<Queue<T>, Error> {
        self.open_proxy(name, &[], maxsize as u64)
    }

    /// The joinable queue `name`, as [`queue`](Self::queue).
    ///
    /// # Errors
    ///
    /// As [`queue`](Self::queue).
    pub fn joinable_queue<T>(&self, name: &str, maxsize: usize) -> Result<JoinableQueue<T>, Error> {
        self.open_proxy(name, &[], maxsize as u64)
    }
}

macro_rules! queue_methods {
    () => {
        /// Puts `item`, waiting while the queue is full.
        ///
        /// # Errors
        ///
        /// As any call.
        pub fn put(&self, item: &T) -> Result<(), Error> {
            self.put_wait(item, Wait::Forever)
        }

        /// Puts `item` if there is room now.
        ///
        /// # Errors
        ///
        /// [`Error::WouldBlock`] if the queue is full; as any call.
        pub fn try_put(&self, item: &T) -> Result<(), Error> {
            self.put_wait(item, Wait::Now)
        }

        /// Puts `item`, waiting at most `timeout` for room.
        ///
        /// # Errors
        ///
        /// [`Error::Timeout`]; as any call.
        pub fn put_timeout(&self, item: &T, timeout: Duration) -> Result<(), Error> {
            self.put_wait(item, Wait::from_timeout(timeout))
        }

        fn put_wait(&self, item: &T, wait: Wait) -> Result<(), Error> {
            let b = enc(item)?;
            self.h.call(Op::Put(Bytes(&b), wait), unit)
        }

        /// Takes the oldest item, waiting while the queue is empty.
        ///
        /// # Errors
        ///
        /// [`Error::Decode`] if it is not a `T` (it is consumed); as any call.
        pub fn get(&self) -> Result<T, Error> {
            self.h.call(Op::Take(Wait::Forever), value)
        }

        /// Takes the oldest item if there is one now.
        ///
        /// # Errors
        ///
        /// [`Error::WouldBlock`] if the queue is empty; as [`get`](Self::get).
        pub fn try_get(&self) -> Result<T, Error> {
            self.h.call(Op::Take(Wait::Now), value)
        }

        /// Takes the oldest item, waiting at most `timeout`.
        ///
        /// # Errors
        ///
        /// [`Error::Timeout`]; as [`get`](Self::get).
        pub fn get_timeout(&self, timeout: Duration) -> Result<T, Error> {
            self.h.call(Op::Take(Wait::from_timeout(timeout)), value)
        }

        /// Number of items queued now (Python's `qsize`).
        ///
        /// # Errors
        ///
        /// As any call.
        pub fn qsize(&self) -> Result<usize, Error> {
            self.h.len()
        }

        /// Is the queue empty now?
        ///
        /// # Errors
        ///
        /// As any call.
        pub fn is_empty(&self) -> Result<bool, Error> {
            Ok(self.qsize()? == 0)
        }
    };
}

impl<T: Serialize + DeserializeOwned> Queue<T> {
    queue_methods!();
}

impl<T: Serialize + DeserializeOwned> JoinableQueue<T> {
    queue_methods!();

    /// Marks one item taken earlier as processed.
    ///
    /// # Errors
    ///
    /// [`Error::Overflow`] if called more often than items were put; as any call.
    pub fn task_done(&self) -> Result<(), Error> {
        self.h.call(Op::TaskDone, unit)
    }

    /// Waits until every item put has been marked done.
    ///
    /// # Errors
    ///
    /// As any call.
    pub fn join(&self) -> Result<(), Error> {
        self.h.call(Op::Join(Wait::Forever), unit)
    }

    /// As [`join`](Self::join), waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`]; as any call.
    pub fn join_timeout(&self, timeout: Duration) -> Result<(), Error> {
        self.h.call(Op::Join(Wait::from_timeout(timeout)), unit)
    }
}
