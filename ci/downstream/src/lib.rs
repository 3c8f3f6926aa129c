//! Nothing shared between the two binaries on purpose: each defines its own `Order`
//! and `Book`, as two unrelated programs would. This file only holds the segment names.

/// The segment names for one run (unique per writer process).
pub fn names(tag: u32) -> (String, String) {
    (
        format!("shmkit-downstream-{tag}-book"),
        format!("shmkit-downstream-{tag}-orders"),
    )
}
