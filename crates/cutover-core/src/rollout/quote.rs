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

/// Why a URL that must be `http://` or `https://` is not, without the URL:
/// its user info, path and query are often the secret (a token, a Slack
/// webhook's path), and a message reaches the status, the history, logs and
/// `GET /v1/services`. At most the scheme and host are shown; a value
/// without a recognisable scheme is not shown at all.
pub fn not_an_http_url(url: &str) -> String {
    const FIX: &str = "must start with http:// or https://";
    match url.split_once("://") {
        Some((scheme, rest))
            if !scheme.is_empty()
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')) =>
        {
            let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
            let authority = &rest[..end];
            let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            format!(
                "is a {} URL (host {}): {FIX}; the rest of the URL is not shown, as it may hold a secret",
                quote(scheme),
                quote(host)
            )
        }
        _ => format!(
            "is not a URL with a scheme: {FIX}; the value is not shown, as it may hold a secret"
        ),
    }
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
    fn a_url_that_is_not_http_shows_its_scheme_and_host_only() {
        let m = not_an_http_url("ftp://alice:s3cret@files.example.com:21/drop?token=abc123#x");
        assert_eq!(
            m,
            "is a \"ftp\" URL (host \"files.example.com:21\"): must start with http:// or https://; \
             the rest of the URL is not shown, as it may hold a secret"
        );
        for secret in ["alice", "s3cret", "drop", "token", "abc123"] {
            assert!(!m.contains(secret), "{secret} in {m}");
        }
        let m = not_an_http_url("hooks.example.com/services/T0/B0/abc123?token=xyz");
        for secret in ["hooks", "abc123", "xyz"] {
            assert!(!m.contains(secret), "{secret} in {m}");
        }
        // Something before `://` that is no scheme is not shown either.
        let m = not_an_http_url("user:pw@host://x");
        assert!(!m.contains("pw"), "{m}");
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(quote("a\nb\u{1b}[31m"), "\"a\\nb\\u{1b}[31m\"");
        assert_eq!(name("ta\tg"), "ta\\tg");
        assert_eq!(escape_controls("ok\r\n"), "ok\\r\\n");
        assert_eq!(escape_controls("\"é\""), "\"é\"");
    }
}
