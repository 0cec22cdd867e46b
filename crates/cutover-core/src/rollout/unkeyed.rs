//! The status of a record whose key is not `<cluster>/<service>`.
//!
//! Such a record names no service, so nothing is deployed from it; but its
//! writer still reads its `status` to learn what happened, so it gets one:
//! `Invalid`, naming the `service` attribute, the form a key must have, and
//! how to fix it (a key cannot be changed, only written anew).

use super::key::KeyError;
use super::status::{Phase, Status, Transition};
use crate::time::Timestamp;

/// The most characters of a key quoted back, in messages and logs.
pub const QUOTED_KEY_LIMIT: usize = 64;

/// `given` as a message quotes it: at most [`QUOTED_KEY_LIMIT`]
/// characters, control characters escaped, and `…` when cut.
pub fn quote_key(given: &str) -> String {
    let mut chars = given.chars();
    let head: String = chars.by_ref().take(QUOTED_KEY_LIMIT).collect();
    let more = if chars.next().is_some() { "…" } else { "" };
    format!("\"{}{more}\"", head.escape_debug())
}

/// What the writer should read: why the key is not one, and what to do.
pub fn message(given: &str, error: &KeyError) -> String {
    format!(
        "attribute `service` is {}, which is not of the form <cluster>/<service>: {}. \
         Nothing is deployed from this record. Write the record again under a key such as \
         prod/checkout-api (the ECS cluster name, '/', the ECS service name, each 1-255 \
         letters, digits, '-' or '_'; in another region or account, prefix it with \
         <region>: or <region>:<account>:), then delete this one",
        quote_key(given),
        error.why
    )
}

/// The status a record with the key `given` should have, starting from the
/// one it has. Deciding again from its own answer changes nothing, so the
/// record is written to once, not on every scan.
pub fn status(given: &str, error: &KeyError, previous: &Status, now: Timestamp) -> Status {
    let message = message(given, error);
    let mut status = previous.clone();
    if status.phase() != Phase::Invalid {
        status.record(Transition {
            at: now,
            from: status.phase(),
            to: Phase::Invalid,
            reason: message.clone(),
            revision: None,
        });
        status.enter(Phase::Invalid);
        status.phase_since = now;
    }
    status.message = message;
    status.last_error = None;
    status.pending = None;
    status
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollout::ServiceKey;

    fn error(given: &str) -> KeyError {
        match given.parse::<ServiceKey>() {
            Err(e) => e,
            Ok(k) => panic!("{given} parsed as {k}"),
        }
    }

    #[test]
    fn a_bad_key_gets_an_invalid_status_naming_service_and_the_expected_form() {
        for given in ["prod", "a/b/c", "/web", "prod/we\u{7}b", "prod/"] {
            let s = status(given, &error(given), &Status::default(), Timestamp(5));
            assert_eq!(s.phase(), Phase::Invalid, "{given}");
            assert!(s.message.contains("`service`"), "{}", s.message);
            assert!(s.message.contains("<cluster>/<service>"), "{}", s.message);
            assert!(
                s.message.contains("Write the record again"),
                "{}",
                s.message
            );
            assert_eq!(s.history.len(), 1);
            assert_eq!(s.phase_since, Timestamp(5));
        }
    }

    #[test]
    fn control_characters_are_escaped_and_long_keys_cut() {
        let s = message("prod/we\u{7}b", &error("prod/we\u{7}b"));
        assert!(s.contains(r#""prod/we\u{7}b""#), "{s}");
        assert!(!s.contains('\u{7}'));
        let long = "x".repeat(2_000);
        let s = message(&long, &error(&long));
        assert!(
            s.contains(&format!("\"{}…\"", "x".repeat(QUOTED_KEY_LIMIT))),
            "{s}"
        );
        assert!(s.len() < 600, "{}", s.len());
    }

    #[test]
    fn deciding_again_from_its_own_status_changes_nothing() {
        let first = status("prod", &error("prod"), &Status::default(), Timestamp(5));
        let again = status("prod", &error("prod"), &first, Timestamp(90));
        assert_eq!(again, first);
    }

    #[test]
    fn a_status_left_from_before_is_kept_in_the_history() {
        let before = Status {
            message: "steady".into(),
            last_error: Some("old".into()),
            ..Status::default()
        };
        let s = status("prod", &error("prod"), &before, Timestamp(7));
        assert_eq!(s.history[0].from, Phase::Steady);
        assert_eq!(s.last_error, None);
    }
}
