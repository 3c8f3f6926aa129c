//! Channels: the SPSC byte ring, `Pipe`/`Connection`, `Queue`/`JoinableQueue`, and `wait`.
