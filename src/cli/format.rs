//! Text for people: aligned tables, ages, weights, steps and times.

use std::time::Duration;

use crate::time::Timestamp;

/// Columns padded to their widest cell; the last column is not padded, so
/// a long message does not push trailing spaces onto every line.
#[derive(Debug)]
pub struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new<const N: usize>(headers: [&str; N]) -> Table {
        Table {
            rows: vec![headers.iter().map(|h| h.to_string()).collect()],
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn render(&self) -> String {
        let columns = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let widths: Vec<usize> = (0..columns)
            .map(|c| {
                self.rows
                    .iter()
                    .filter_map(|r| r.get(c))
                    .map(|cell| cell.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        for row in &self.rows {
            let mut line = String::new();
            for (c, cell) in row.iter().enumerate() {
                if c + 1 == row.len() {
                    line.push_str(cell);
                } else {
                    line.push_str(cell);
                    let pad = widths[c] - cell.chars().count() + 2;
                    line.extend(std::iter::repeat_n(' ', pad));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// How long ago, in at most two units: `42s`, `12m 5s`, `3h 20m`, `2d 4h`.
pub fn age(d: Duration) -> String {
    let s = d.as_secs();
    let (big, big_unit, small, small_unit) = match s {
        0..60 => return format!("{s}s"),
        60..3_600 => (s / 60, "m", s % 60, "s"),
        3_600..86_400 => (s / 3_600, "h", s % 3_600 / 60, "m"),
        _ => (s / 86_400, "d", s % 86_400 / 3_600, "h"),
    };
    if small == 0 {
        format!("{big}{big_unit}")
    } else {
        format!("{big}{big_unit} {small}{small_unit}")
    }
}

/// Production weights as `active/candidate`, or `-` when none were verified.
pub fn weights(w: Option<(u32, u32)>) -> String {
    match w {
        Some((active, candidate)) => format!("{active}/{candidate}"),
        None => "-".into(),
    }
}

/// Steps completed out of all, `?` where the record does not say how many.
pub fn step(done: Option<u32>, total: Option<usize>) -> String {
    match (done, total) {
        (None, _) => "-".into(),
        (Some(i), Some(n)) => format!("{}/{n}", (i as usize).min(n)),
        (Some(i), None) => format!("{i}/?"),
    }
}

/// A time to the second, in UTC.
pub fn time(t: Timestamp) -> String {
    humantime::format_rfc3339_seconds(t.to_system()).to_string()
}

/// At most `max` characters, the cut marked with `…`, on one line.
pub fn clip(text: &str, max: usize) -> String {
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= max {
        return one_line;
    }
    let mut cut: String = one_line.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// `value` or `-` for nothing.
pub fn or_dash(value: Option<impl ToString>) -> String {
    value.map_or_else(|| "-".to_string(), |v| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns_and_leave_the_last_unpadded() {
        let mut t = Table::new(["SERVICE", "PHASE", "MESSAGE"]);
        t.row(vec!["prod/web".into(), "Steady".into(), "ok".into()]);
        t.row(vec!["a/b".into(), "AwaitingPromotion".into(), "".into()]);
        assert_eq!(
            t.render(),
            "SERVICE   PHASE              MESSAGE\n\
             prod/web  Steady             ok\n\
             a/b       AwaitingPromotion\n"
        );
    }

    #[test]
    fn tables_count_characters_not_bytes() {
        let mut t = Table::new(["A", "B"]);
        t.row(vec!["→→".into(), "x".into()]);
        assert_eq!(t.render(), "A   B\n→→  x\n");
    }

    #[test]
    fn ages_use_at_most_two_units() {
        let s = Duration::from_secs;
        assert_eq!(age(s(0)), "0s");
        assert_eq!(age(s(59)), "59s");
        assert_eq!(age(s(60)), "1m");
        assert_eq!(age(s(725)), "12m 5s");
        assert_eq!(age(s(3 * 3_600 + 20 * 60 + 9)), "3h 20m");
        assert_eq!(age(s(2 * 86_400 + 4 * 3_600 + 1)), "2d 4h");
        assert_eq!(age(Duration::from_millis(999)), "0s");
    }

    #[test]
    fn weights_read_active_then_candidate() {
        assert_eq!(weights(Some((90, 10))), "90/10");
        assert_eq!(weights(None), "-");
    }

    #[test]
    fn steps_count_what_is_done_out_of_all() {
        assert_eq!(step(Some(1), Some(3)), "1/3");
        assert_eq!(step(Some(5), Some(3)), "3/3");
        assert_eq!(step(Some(0), None), "0/?");
        assert_eq!(step(None, Some(3)), "-");
    }

    #[test]
    fn times_are_utc_to_the_second() {
        assert_eq!(time(Timestamp(1_700_000_123_456)), "2023-11-14T22:15:23Z");
    }

    #[test]
    fn clipping_keeps_one_line_and_marks_the_cut() {
        assert_eq!(clip("short", 10), "short");
        assert_eq!(clip("two\nlines", 20), "two lines");
        assert_eq!(clip("abcdefghij", 5), "abcd…");
        assert_eq!(or_dash(None::<&str>), "-");
        assert_eq!(or_dash(Some(3)), "3");
    }
}
