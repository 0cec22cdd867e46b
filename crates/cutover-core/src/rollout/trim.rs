//! A status small enough to store next to a large record.
//!
//! DynamoDB keeps the writer's record and the controller's status in one
//! item, and an item holds at most 400 KB, attribute names and values
//! counted (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html):
//! a 300 KB record leaves under 100 KB for the status. Most of a status is
//! free text that endpoints and people choose (a hook's detail, a gate's
//! reading, a message quoting the record) and a history of transitions.
//! When the store refuses a status for its size, the controller stores
//! [`trimmed`] instead: the same state, every text cut short, the history
//! cut to its newest entries, and a line that says so.

use super::status::{RollbackReason, Status};

/// The most bytes a trimmed status keeps of its message and last error.
pub const MESSAGE_LIMIT: usize = 1024;
/// The most bytes a trimmed status keeps of any other text: a transition's
/// reason, a gate's or a hook's detail, a failure's reason.
pub const DETAIL_LIMIT: usize = 256;
/// The transitions a trimmed status keeps, newest last.
pub const TRIMMED_HISTORY: usize = 5;

/// Ends the message of a trimmed status, so whoever reads it knows that
/// more was said than they see, and what to do about it.
pub const TRIMMED_NOTE: &str = "(status trimmed to fit the record's 400 KB DynamoDB item: \
     texts are cut short and only the newest transitions kept; make the record smaller to see all of it)";

/// At most `limit` bytes of `text`, cut at a character boundary and ending
/// in `…` when cut.
pub fn cut(text: &str, limit: usize) -> String {
    if text.len() <= limit {
        return text.to_string();
    }
    let ellipsis = '…';
    let mut end = limit.saturating_sub(ellipsis.len_utf8());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{ellipsis}", &text[..end])
}

/// `status` with the same phase, rollout and task sets, and every text and
/// the history bounded. Trimming a trimmed status changes nothing, so a
/// controller that stored one does not write it again.
pub fn trimmed(status: &Status) -> Status {
    let mut s = status.clone();
    let message = s.message.strip_suffix(TRIMMED_NOTE).unwrap_or(&s.message);
    let message = cut(message.trim_end(), MESSAGE_LIMIT);
    s.message = if message.is_empty() {
        TRIMMED_NOTE.to_string()
    } else {
        format!("{message} {TRIMMED_NOTE}")
    };
    let excess = s.history.len().saturating_sub(TRIMMED_HISTORY);
    s.history.drain(..excess);
    cut_texts(&mut s, MESSAGE_LIMIT, DETAIL_LIMIT);
    s
}

/// The most bytes any status keeps of its message and last error.
pub const BOUNDED_MESSAGE_LIMIT: usize = 4 * 1024;
/// The most bytes any status keeps of any other text.
pub const BOUNDED_DETAIL_LIMIT: usize = 1024;

/// `status` with every free text cut to the bounds every stored status
/// keeps: whatever endpoints, gates, AWS errors or records say, a status
/// stays a few tens of KB (20 transitions, each gate and hook once), far
/// from the 400 KB an item may hold.
pub fn bounded(status: Status) -> Status {
    let mut s = status;
    s.message = cut(&s.message, BOUNDED_MESSAGE_LIMIT);
    cut_texts(&mut s, BOUNDED_MESSAGE_LIMIT, BOUNDED_DETAIL_LIMIT);
    s
}

/// Cuts every free text of `s` but its message: the last error to
/// `message_limit` bytes, the rest to `detail_limit`.
fn cut_texts(s: &mut Status, message_limit: usize, detail_limit: usize) {
    s.last_error = s.last_error.as_deref().map(|e| cut(e, message_limit));
    for t in &mut s.history {
        t.reason = cut(&t.reason, detail_limit);
    }
    if let Some(f) = s.failed.as_mut() {
        f.reason = cut(&f.reason, detail_limit);
    }
    if let Some(r) = s.rollout.as_mut() {
        for gate in r.gates.values_mut() {
            gate.detail = cut(&gate.detail, detail_limit);
        }
        for verdict in r.hook_verdicts.values_mut() {
            verdict.detail = cut(&verdict.detail, detail_limit);
        }
        match r.rollback.as_mut() {
            Some(
                RollbackReason::GateFailed { detail, .. }
                | RollbackReason::DeadlineExceeded { detail, .. }
                | RollbackReason::HookFailed { detail, .. },
            ) => *detail = cut(detail, detail_limit),
            Some(RollbackReason::Aborted | RollbackReason::Superseded { .. }) | None => {}
        }
    }
}

/// Whether `status` is already as [`trimmed`] makes it.
pub fn is_trimmed(status: &Status) -> bool {
    status.message.ends_with(TRIMMED_NOTE)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::rollout::control::RolloutId;
    use crate::rollout::gate::GateState;
    use crate::rollout::hook::{HookAnswer, HookPoint, HookVerdict};
    use crate::rollout::status::{Failure, Phase, Rollout, Transition};
    use crate::rollout::{Revision, Status};
    use crate::time::Timestamp;

    fn huge() -> String {
        "é".repeat(100_000)
    }

    fn rollout(id: &RolloutId) -> Rollout {
        Rollout {
            id: id.clone(),
            started_at: Timestamp(1),
            from: None,
            target_group: "tg-green".into(),
            step: 2,
            step_started_at: Timestamp(2),
            progress_at: Timestamp(3),
            gate_failures: 0,
            task_failures: 0,
            health: Default::default(),
            rollback: Some(RollbackReason::HookFailed {
                hook: HookPoint::AfterProductionTraffic,
                detail: huge(),
            }),
            stage: crate::rollout::status::Stage::RollingBack,
            hold: None,
            gates: BTreeMap::from([(
                "errors".to_string(),
                GateState {
                    last_at: None,
                    consecutive_failures: 1,
                    last_pass: None,
                    detail: huge(),
                },
            )]),
            hooks: BTreeMap::new(),
            hook_verdicts: BTreeMap::from([(
                HookPoint::AfterProductionTraffic,
                HookVerdict {
                    rollout: id.clone(),
                    verdict: HookAnswer::Fail,
                    detail: huge(),
                },
            )]),
            watch: None,
            steps: None,
            went_on_from: None,
            hand_change: None,
            alerted: Default::default(),
            service_deployment: None,
        }
    }

    fn swollen() -> Status {
        let id = RolloutId {
            revision: Revision::from_raw("abc123"),
            attempt: 1,
        };
        let mut s = Status {
            message: huge(),
            last_error: Some(huge()),
            rollout: Some(rollout(&id)),
            failed: Some(Failure {
                rollout: id,
                reason: huge(),
                at: Timestamp(4),
            }),
            ..Status::default()
        };
        for i in 0..20 {
            s.record(Transition {
                at: Timestamp(i),
                from: Phase::Shifting,
                to: Phase::RollingBack,
                reason: huge(),
                revision: None,
            });
        }
        s
    }

    fn encoded_len(s: &Status) -> usize {
        serde_json::to_vec(s).map(|v| v.len()).unwrap_or(usize::MAX)
    }

    #[test]
    fn a_trimmed_status_is_small_whatever_its_texts_held() {
        let big = swollen();
        assert!(encoded_len(&big) > 5_000_000);
        let small = trimmed(&big);
        assert!(encoded_len(&small) < 8 * 1024, "{}", encoded_len(&small));
        assert!(small.message.ends_with(TRIMMED_NOTE), "{}", small.message);
        assert!(small.message.starts_with("ééé"));
        assert_eq!(small.history.len(), TRIMMED_HISTORY);
        assert_eq!(
            small.history.last(),
            big.history
                .last()
                .map(|t| Transition {
                    reason: cut(&t.reason, DETAIL_LIMIT),
                    ..t.clone()
                })
                .as_ref()
        );
    }

    #[test]
    fn trimming_keeps_the_state_the_rollout_resumes_from() {
        let big = swollen();
        let small = trimmed(&big);
        assert_eq!(small.phase(), big.phase());
        let (b, s) = (big.rollout.unwrap(), small.rollout.unwrap());
        assert_eq!(
            (s.id, s.step, s.target_group),
            (b.id, b.step, b.target_group)
        );
        assert_eq!(s.gates["errors"].consecutive_failures, 1);
        assert_eq!(
            s.hook_verdicts[&HookPoint::AfterProductionTraffic].verdict,
            HookAnswer::Fail
        );
    }

    #[test]
    fn every_status_is_bounded_far_below_the_item_limit() {
        let big = swollen();
        let stored = bounded(big.clone());
        assert!(encoded_len(&stored) < 64 * 1024, "{}", encoded_len(&stored));
        assert_eq!(stored.history.len(), big.history.len(), "history kept");
        assert_eq!(
            bounded(stored.clone()),
            stored,
            "bounding twice changes nothing"
        );
        let short = Status::default();
        assert_eq!(bounded(short.clone()), short);
    }

    #[test]
    fn trimming_twice_changes_nothing() {
        let once = trimmed(&swollen());
        assert!(is_trimmed(&once));
        assert_eq!(trimmed(&once), once);
    }

    #[test]
    fn the_readme_states_the_limits_in_force() {
        let readme = include_str!("../../../../README.md");
        let status = readme
            .split("\n## Status\n")
            .nth(1)
            .and_then(|s| s.split("\n## ").next())
            .expect("a Status section");
        // Compared word by word, so reflowing the text does not matter.
        let status = status.split_whitespace().collect::<Vec<_>>().join(" ");
        let thousands = |n: usize| {
            let s = n.to_string();
            match s.len() {
                4.. => format!("{},{}", &s[..s.len() - 3], &s[s.len() - 3..]),
                _ => s,
            }
        };
        for stated in [
            format!("cut to {} bytes", thousands(MESSAGE_LIMIT)),
            format!("to {} bytes", DETAIL_LIMIT),
            format!("the last {TRIMMED_HISTORY} transitions"),
            format!(
                "at most {} bytes of its `message` and `last_error` and {} bytes of any other text",
                thousands(BOUNDED_MESSAGE_LIMIT),
                thousands(BOUNDED_DETAIL_LIMIT)
            ),
            format!(
                "and the last {} transitions: a few tens of KB",
                super::super::status::HISTORY_LIMIT
            ),
            format!(
                "at most {} characters of the key",
                crate::rollout::unkeyed::QUOTED_KEY_LIMIT
            ),
            TRIMMED_NOTE
                .split(':')
                .next()
                .unwrap_or(TRIMMED_NOTE)
                .to_string(),
        ] {
            assert!(status.contains(&stated), "README ## Status: {stated}");
        }
    }

    #[test]
    fn cut_keeps_whole_characters_and_says_it_cut() {
        assert_eq!(cut("short", 10), "short");
        let c = cut(&"é".repeat(10), 7);
        assert!(c.len() <= 7, "{c}");
        assert_eq!(c, "éé…");
    }
}
