//! Segments and processes: a shared counter, a named segment, exit codes and kills.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use shmkit::{ExitStatus, Process, Shared};

pub fn run() -> Result<(), Box<dyn std::error::Error>> {
    println!("== segments and processes ==");

    // 1. Four forked processes add to one counter in anonymous shared memory.
    let counter = Shared::new(AtomicU64::new(0))?;
    const PER_CHILD: u64 = 250_000;
    let start = Instant::now();
    let mut children = Vec::new();
    for _ in 0..4 {
        children.push(Process::spawn(|| {
            for _ in 0..PER_CHILD {
                counter.fetch_add(1, Ordering::Relaxed);
            }
            0
        })?);
    }
    for child in &mut children {
        let status = child.join()?;
        assert!(status.success(), "child {status}");
    }
    let total = counter.load(Ordering::Relaxed);
    println!(
        "4 processes x {PER_CHILD} increments of one shared AtomicU64 = {total} ({:?})",
        start.elapsed()
    );
    assert_eq!(total, 4 * PER_CHILD);

    // 2. A named segment: created here, opened by name in another process.
    let name = format!("shmkit-tour-{}", std::process::id());
    let greeting = Shared::create(&name, AtomicU64::new(0x5eed))?;
    let mut reader = Process::spawn(|| match Shared::<AtomicU64>::open(&name) {
        Ok(seg) if seg.load(Ordering::SeqCst) == 0x5eed => {
            seg.store(0xacce55, Ordering::SeqCst);
            0
        }
        Ok(_) => 2,
        Err(_) => 3,
    })?;
    let status = reader.join()?;
    println!(
        "named segment /dev/shm/{name}: a second process opened it by name, read 0x5eed, wrote {:#x} ({status})",
        greeting.load(Ordering::SeqCst)
    );
    assert_eq!(greeting.load(Ordering::SeqCst), 0xacce55);
    // A wrong type is refused with an error that says so.
    let wrong = Shared::<u32>::open(&name).unwrap_err();
    println!("opening it as the wrong type: Err({wrong})");
    drop(greeting); // the creator unlinks on drop
    assert!(!std::path::Path::new("/dev/shm").join(&name).exists());

    // 3. Exit codes, a panic, and a kill.
    let mut ok = Process::spawn(|| 7)?;
    let mut panics = Process::spawn(|| {
        // A one-line report instead of the default hook's (the tour is single-threaded,
        // so the child may take the hook's lock).
        std::panic::set_hook(Box::new(|info| eprintln!("  child says: {info}")));
        panic!("a child may panic")
    })?;
    let mut sleeper = Process::spawn(|| {
        std::thread::sleep(Duration::from_secs(30));
        0
    })?;
    let (a, b) = (ok.join()?, panics.join()?);
    assert_eq!(sleeper.join_timeout(Duration::from_millis(50))?, None);
    sleeper.kill()?;
    let c = sleeper.join()?;
    println!("exit codes: returned 7 -> {a}; panicked -> {b}; sleeping then killed -> {c}");
    assert_eq!(
        (a, b, c),
        (
            ExitStatus::Exited(7),
            ExitStatus::Exited(101),
            ExitStatus::Signaled(9)
        )
    );
    Ok(())
}
