//! Text output: sizes, ages, participants, and tables that fit 80 columns.

use std::fmt::Write as _;

use shmkit::inspect::{Liveness, Participant, Sleepers};

/// The terminal width we fit.
pub const WIDTH: usize = 80;

/// `4096` → `4.0K`, `36864` → `36K`, `1048576` → `1.0M`.
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "K", "M", "G", "T", "P"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes}B")
    } else if v < 10.0 {
        format!("{v:.1}{}", UNITS[unit])
    } else {
        format!("{v:.0}{}", UNITS[unit])
    }
}

/// Seconds → `5s`, `3m`, `2h`, `4d`.
pub fn age(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m", secs / 60),
        3600..86400 => format!("{}h", secs / 3600),
        _ => format!("{}d", secs / 86400),
    }
}

/// A rate: `12/s`, `3.4K/s` (bytes with `bytes`).
pub fn rate(per_sec: f64, bytes: bool) -> String {
    if bytes {
        format!("{}/s", size(per_sec.max(0.0).round() as u64))
    } else if per_sec < 10.0 {
        format!("{per_sec:.1}/s")
    } else {
        format!("{:.0}/s", per_sec)
    }
}

/// Seconds since `created_ns` (CLOCK_REALTIME), if it is in the past.
pub fn age_of(created_ns: u64) -> Option<u64> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_nanos() as u64;
    now.checked_sub(created_ns).map(|d| d / 1_000_000_000)
}

/// `pid 4242 (participant 81930), alive`; `participant 81930, dead`.
pub fn participant(p: &Participant) -> String {
    let mut s = String::new();
    match (p.pid, p.tid) {
        (Some(pid), Some(tid)) if tid != pid => {
            let _ = write!(s, "pid {pid} tid {tid} (participant {})", p.id);
        }
        (Some(pid), _) => {
            let _ = write!(s, "pid {pid} (participant {})", p.id);
        }
        _ => {
            let _ = write!(s, "participant {}", p.id);
        }
    }
    let _ = write!(s, ", {}", liveness(p.liveness));
    s
}

/// `alive`, `DEAD`, `unknown`: the dead stand out.
pub fn liveness(l: Liveness) -> &'static str {
    match l {
        Liveness::Alive => "alive",
        Liveness::Dead => "DEAD",
        Liveness::Unknown => "unknown",
    }
}

/// `0`; `2`; `2 (stale: announced 40s ago, died asleep)`.
pub fn sleepers(s: &Sleepers) -> String {
    match (s.count, s.stale, s.age_secs) {
        (0, _, _) => "0".into(),
        (n, true, Some(age)) => format!("{n} (stale: announced {age}s ago, died asleep)"),
        (n, _, _) => format!("{n}"),
    }
}

/// Wraps `line` to [`WIDTH`] columns at spaces; continuation lines are indented by
/// `indent` spaces. A word too long for a line is split.
pub fn wrap(line: &str, indent: usize) -> Vec<String> {
    let lead = line.len() - line.trim_start_matches(' ').len();
    let pad = " ".repeat(indent);
    let mut out = Vec::new();
    let mut cur = line[..lead].to_string();
    let (mut len, mut empty) = (lead, true);
    // Splitting at single spaces keeps runs of spaces (column alignment) as empty words.
    for word in line[lead..].split(' ') {
        if word.is_empty() && empty {
            continue;
        }
        let mut word: Vec<char> = word.chars().collect();
        loop {
            let sep = usize::from(!empty);
            if len + sep + word.len() <= WIDTH {
                if sep == 1 {
                    cur.push(' ');
                }
                cur.extend(word.iter());
                len += sep + word.len();
                empty = false;
                break;
            }
            if word.len() > WIDTH - indent && len + sep < WIDTH {
                // Too long for any line: fill this one with its start.
                let take = WIDTH - len - sep;
                if sep == 1 {
                    cur.push(' ');
                }
                cur.extend(word.drain(..take));
            }
            out.push(std::mem::replace(&mut cur, pad.clone()));
            len = indent;
            empty = true;
        }
    }
    if !empty || out.is_empty() {
        out.push(cur);
    }
    out
}

/// Cuts `s` to `width` characters, ending in `…` if cut.
pub fn cut(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        return s.to_string();
    }
    let mut out: String = s.chars().take(width.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// A table: a header row and rows of cells; column `flex` (the widest, free-text
/// ones) shrink first so that each line fits [`WIDTH`]. Numbers in `right` columns
/// are right-aligned.
pub struct Table {
    pub header: Vec<&'static str>,
    pub rows: Vec<Vec<String>>,
    pub flex: Vec<usize>,
    pub right: Vec<usize>,
}

impl Table {
    /// The lines of the table.
    pub fn render(&self) -> Vec<String> {
        let cols = self.header.len();
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate().take(cols) {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let total = |w: &[usize]| w.iter().sum::<usize>() + 2 * (w.len() - 1);
        // Shrink the flexible columns, widest first, down to their headers (min 8).
        while total(&widths) > WIDTH {
            let Some(&widest) = self.flex.iter().max_by_key(|&&i| widths[i]) else {
                break;
            };
            let floor = self.header[widest].len().max(8);
            if widths[widest] <= floor {
                break;
            }
            widths[widest] -= 1;
        }
        let line = |cells: &[String]| {
            let mut s = String::new();
            for (i, width) in widths.iter().enumerate() {
                let cell = cut(cells.get(i).map_or("", String::as_str), *width);
                if i > 0 {
                    s.push_str("  ");
                }
                if self.right.contains(&i) {
                    let _ = write!(s, "{cell:>width$}");
                } else if i + 1 == cols {
                    s.push_str(&cell);
                } else {
                    let _ = write!(s, "{cell:<width$}");
                }
            }
            s.trim_end().to_string()
        };
        let mut out = vec![line(
            &self
                .header
                .iter()
                .map(|h| h.to_string())
                .collect::<Vec<_>>(),
        )];
        out.extend(self.rows.iter().map(|r| line(r)));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_ages_read_well() {
        assert_eq!(size(512), "512B");
        assert_eq!(size(4096), "4.0K");
        assert_eq!(size(36 * 1024), "36K");
        assert_eq!(size(3 << 20), "3.0M");
        assert_eq!(age(59), "59s");
        assert_eq!(age(61), "1m");
        assert_eq!(age(7200), "2h");
        assert_eq!(age(200_000), "2d");
        assert_eq!(cut("abcdef", 4), "abc…");
        assert_eq!(cut("abc", 4), "abc");
    }

    #[test]
    fn wrapped_lines_fit_and_keep_every_word() {
        let long = format!("  holder       {} end", "word ".repeat(30));
        let lines = wrap(&long, 15);
        assert!(lines.len() > 1);
        for l in &lines {
            assert!(l.chars().count() <= WIDTH, "{l:?}");
        }
        assert!(lines[1].starts_with("               word"));
        let joined: Vec<&str> = lines.iter().flat_map(|l| l.split_whitespace()).collect();
        assert_eq!(joined.len(), 1 + 30 + 1);
        let name = "x".repeat(200);
        let lines = wrap(&name, 2);
        assert_eq!(lines.iter().map(|l| l.trim().len()).sum::<usize>(), 200);
        assert!(lines.iter().all(|l| l.chars().count() <= WIDTH));
        assert_eq!(wrap("short", 4), ["short"]);
    }

    #[test]
    fn tables_fit_80_columns() {
        let t = Table {
            header: vec!["NAME", "TYPE", "SIZE"],
            rows: vec![vec!["x".repeat(60), "y".repeat(60), "4.0K".into()]],
            flex: vec![0, 1],
            right: vec![2],
        };
        for line in t.render() {
            assert!(line.chars().count() <= WIDTH, "{line:?}");
        }
        assert!(t.render()[1].ends_with("4.0K"));
    }
}
