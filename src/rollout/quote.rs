//! How messages about a record show what the writer wrote. A record's values
//! reach the status, logs and terminals: a message quotes only a short prefix
//! of any value (so it cannot grow with the input and push the status past
//! DynamoDB's item size limit), and control characters are escaped (so a
//! newline or an escape sequence in a record cannot forge a log line or
//! repaint a terminal).

/// The most characters of a written value or field name a message quotes.
pub const QUOTE_LIMIT: usize = 64;

/// `s` in double quotes, control characters and quotes escaped, cut to
/// [`QUOTE_LIMIT`] characters with `…` when it is longer.
pub fn quote(s: &str) -> String {
    let (prefix, cut) = prefix(s);
    let mut out = String::with_capacity(prefix.len() + 2);
    out.push('"');
    out.extend(prefix.chars().flat_map(char::escape_debug));
    if cut {
        out.push('…');
    }
    out.push('"');
    out
}

/// A field name as a message shows it: control characters escaped, cut to
/// [`QUOTE_LIMIT`] characters with `…`.
pub fn name(s: &str) -> String {
    let (prefix, cut) = prefix(s);
    let mut out = escape_controls(prefix);
    if cut {
        out.push('…');
    }
    out
}

/// `s` with control characters written as escapes (`\n`, `\u{1b}`) and
/// everything else as it is.
pub fn escape_controls(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    out
}

fn prefix(s: &str) -> (&str, bool) {
    match s.char_indices().nth(QUOTE_LIMIT) {
        Some((at, _)) => (&s[..at], true),
        None => (s, false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_values_are_quoted_whole() {
        assert_eq!(quote("web:2"), "\"web:2\"");
        assert_eq!(name("container_port"), "container_port");
    }

    #[test]
    fn long_values_are_cut_to_the_limit() {
        let long = "x".repeat(300_000);
        let q = quote(&long);
        assert_eq!(q, format!("\"{}…\"", "x".repeat(QUOTE_LIMIT)));
        assert_eq!(name(&long), format!("{}…", "x".repeat(QUOTE_LIMIT)));
        // Characters, not bytes: a multi-byte prefix is never split.
        let wide = "é".repeat(QUOTE_LIMIT + 1);
        assert_eq!(quote(&wide), format!("\"{}…\"", "é".repeat(QUOTE_LIMIT)));
        assert_eq!(
            quote(&"é".repeat(QUOTE_LIMIT)).chars().count(),
            QUOTE_LIMIT + 2
        );
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(quote("a\nb\u{1b}[31m"), "\"a\\nb\\u{1b}[31m\"");
        assert_eq!(name("ta\tg"), "ta\\tg");
        assert_eq!(escape_controls("ok\r\n"), "ok\\r\\n");
        assert_eq!(escape_controls("\"é\""), "\"é\"");
    }
}
