//! `shmkit clean [--dry-run] [NAME...]`: removes segments left by dead creators that
//! nobody maps (see `shmkit::inspect::clean` for every check).

use serde_json::json;
use shmkit::inspect::{Cleaned, Kept, OpenError, clean};

/// Is this "kept" worth a line when the user named no segment? Objects that are not
/// shmkit segments (and the registry) are passed over silently then.
fn interesting(kept: &Kept) -> bool {
    !matches!(
        kept,
        Kept::NotOurs(
            OpenError::NotShmkit { .. }
                | OpenError::TooSmall { .. }
                | OpenError::NotAFile
                | OpenError::Registry
                | OpenError::Empty
                | OpenError::NotFound
                | OpenError::Creating { creator: None }
                | OpenError::PermissionDenied
        )
    )
}

/// Runs `clean`; false if a removal failed, or a segment named on the command line
/// is not one that can be cleaned (not found, not ours).
pub fn run(dry_run: bool, names: &[String], json: bool) -> bool {
    let explicit = !names.is_empty();
    let names = if explicit {
        names.to_vec()
    } else {
        match std::fs::read_dir("/dev/shm") {
            Ok(dir) => {
                let mut n: Vec<String> = dir
                    .filter_map(|e| Some(e.ok()?.file_name().to_str()?.to_string()))
                    .collect();
                n.sort();
                n
            }
            Err(e) => {
                eprintln!("shmkit: cannot list /dev/shm: {e}");
                return false;
            }
        }
    };
    let mut ok = true;
    let (mut removed, mut kept) = (0, 0);
    let mut results = Vec::new();
    for name in &names {
        let outcome = clean(name, dry_run);
        let (action, reason) = match &outcome {
            Cleaned::Removed => (
                "removed",
                String::from("its creator is dead and nobody maps it"),
            ),
            Cleaned::WouldRemove => (
                "would remove",
                String::from("its creator is dead and nobody maps it"),
            ),
            Cleaned::Kept(k) => {
                if !explicit && !interesting(k) {
                    continue;
                }
                if matches!(k, Kept::Failed(_)) || (explicit && matches!(k, Kept::NotOurs(_))) {
                    ok = false;
                }
                ("kept", k.to_string())
            }
            _ => ("kept", String::from("unknown outcome")),
        };
        if action == "kept" {
            kept += 1;
        } else {
            removed += 1;
        }
        if json {
            results.push(json!({
                "name": name,
                "action": action.replace(' ', "_"),
                "reason": reason,
            }));
        } else {
            for line in crate::format::wrap(&format!("{action:<12} {name}: {reason}"), 13) {
                println!("{line}");
            }
        }
    }
    if json {
        println!(
            "{}",
            json!({ "dry_run": dry_run, "results": results, "removed": removed, "kept": kept })
        );
    } else {
        let verb = if dry_run { "would remove" } else { "removed" };
        println!("{verb} {removed} segment(s), kept {kept}");
    }
    ok
}
