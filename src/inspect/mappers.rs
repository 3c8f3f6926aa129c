//! Which processes map a segment: from `/proc/*/maps`.
//!
//! Every mapping of a file shows its device and inode in `/proc/PID/maps` (a segment
//! unlinked since shows ` (deleted)` after its path, with the same inode), so one
//! pass over every process's maps finds the mappers of every segment at once. What
//! this cannot see: processes whose maps this user may not read (another user's, unless
//! run as root), and processes in other PID namespaces (a container sharing
//! `/dev/shm` but not our `/proc`). The count is therefore a lower bound, flagged as
//! such ([`Mappers::unreadable`]); `clean` does not rely on it where the kernel can
//! answer for everyone (see [`clean`](super::clean)).

use std::collections::HashMap;
use std::vec::Vec;

use super::ObjectId;

/// The processes that map each object, as found in `/proc` at one instant.
#[derive(Debug, Clone, Default)]
pub struct Mappers {
    by_object: HashMap<ObjectId, Vec<i32>>,
    /// Processes whose maps could not be read (permission): they may map anything.
    pub unreadable: u32,
}

impl Mappers {
    /// The pids of the processes (other than this one) that map `object`, in
    /// ascending order.
    pub fn of(&self, object: ObjectId) -> &[i32] {
        self.by_object.get(&object).map_or(&[], Vec::as_slice)
    }
}

/// Scans `/proc/*/maps` for mappings of files on `/dev/shm`'s file system. Skips this
/// process, and processes that exit while it looks.
pub fn mappers() -> Mappers {
    let mut found = Mappers::default();
    let Ok((major, minor)) = crate::sys::tools::shm_device() else {
        return found;
    };
    let me = std::process::id() as i32;
    let Ok(dir) = std::fs::read_dir("/proc") else {
        found.unreadable += 1;
        return found;
    };
    let mut pids: Vec<i32> = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| pid != me)
        .collect();
    pids.sort_unstable();
    for pid in pids {
        let maps = match std::fs::read_to_string(std::format!("/proc/{pid}/maps")) {
            Ok(maps) => maps,
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                found.unreadable += 1;
                continue;
            }
            // Gone meanwhile (or a kernel thread's empty maps).
            Err(_) => continue,
        };
        for line in maps.lines() {
            let Some(object) = parse_line(line, major, minor) else {
                continue;
            };
            let pids = found.by_object.entry(object).or_default();
            if pids.last() != Some(&pid) {
                pids.push(pid);
            }
        }
    }
    found
}

/// The object of one `/proc/PID/maps` line (`range perms offset MAJ:MIN inode
/// path`), if it is on device `major:minor`.
fn parse_line(line: &str, major: u32, minor: u32) -> Option<ObjectId> {
    let mut fields = line.split_ascii_whitespace();
    let dev = fields.nth(3)?;
    let ino = fields.next()?.parse::<u64>().ok()?;
    let (maj, min) = dev.split_once(':')?;
    let (maj, min) = (
        u32::from_str_radix(maj, 16).ok()?,
        u32::from_str_radix(min, 16).ok()?,
    );
    if ino == 0 || maj != major || min != minor {
        return None;
    }
    Some(ObjectId {
        dev: crate::sys::tools::device(maj, min),
        ino,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_lines_parse() {
        let line = "7f1c2a000000-7f1c2a001000 rw-s 00000000 00:1a 4242                       /dev/shm/q (deleted)";
        let got = parse_line(line, 0, 0x1a).unwrap();
        assert_eq!(got.ino, 4242);
        assert_eq!(got.dev, crate::sys::tools::device(0, 0x1a));
        assert_eq!(parse_line(line, 0, 0x1b), None);
        assert_eq!(
            parse_line("7f1c2a000000-7f1c2a001000 r--p 00000000 00:00 0", 0, 0),
            None
        );
        assert_eq!(parse_line("garbage", 0, 0), None);
    }
}
