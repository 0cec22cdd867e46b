//! The HTTP gate: one request to the service owner's endpoint, and the
//! answer held against what the gate expects.

use crate::rollout::gate::{HttpGate, HttpMethod, JsonExpect, Verdict};

use super::fetch::{self, Answer};

pub async fn read(client: &reqwest::Client, gate: &HttpGate) -> (Verdict, String) {
    let mut request = match gate.method {
        HttpMethod::Get => client.get(&gate.url),
        HttpMethod::Post => client.post(&gate.url),
    };
    if let Some(body) = &gate.body {
        request = request.body(body.clone());
    }
    match fetch::send(request, gate.timeout).await {
        Ok(answer) => judge(gate, &answer),
        Err(failure) => (Verdict::Fail, failure.to_string()),
    }
}

/// Every expectation that is set must hold; the first that does not is
/// the reason, so a person sees what to look at first.
pub fn judge(gate: &HttpGate, answer: &Answer) -> (Verdict, String) {
    let mut held = vec![format!("status {}", answer.status)];
    if let Some(want) = gate.expect_status
        && answer.status != want
    {
        return (
            Verdict::Fail,
            format!("status {}, expected {want}", answer.status),
        );
    }
    if let Some(want) = &gate.expect_body {
        if !answer.text().contains(want.as_str()) {
            return (
                Verdict::Fail,
                format!("status {}, body does not contain {want:?}", answer.status),
            );
        }
        held.push(format!("body contains {want:?}"));
    }
    if let Some(expect) = &gate.expect_json {
        match json_field(expect, &answer.body) {
            Ok(()) => held.push(format!("{} = {}", expect.pointer, expect.equals)),
            Err(why) => return (Verdict::Fail, format!("status {}, {why}", answer.status)),
        }
    }
    (Verdict::Pass, held.join(", "))
}

fn json_field(expect: &JsonExpect, body: &[u8]) -> Result<(), String> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("body is not JSON: {e}"))?;
    match value.pointer(&expect.pointer) {
        None => Err(format!("the JSON body has no {}", expect.pointer)),
        Some(found) if *found == expect.equals => Ok(()),
        Some(found) => Err(format!(
            "{} is {found}, expected {}",
            expect.pointer, expect.equals
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use super::*;

    fn gate() -> HttpGate {
        HttpGate {
            name: "smoke".into(),
            url: "http://127.0.0.1:1/health".into(),
            method: HttpMethod::Get,
            body: None,
            expect_status: Some(200),
            expect_body: None,
            expect_json: None,
            interval: Duration::from_secs(1),
            failure_threshold: 1,
            timeout: Duration::from_secs(1),
        }
    }

    fn answer(status: u16, body: &str) -> Answer {
        Answer {
            status,
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn a_wrong_status_says_which_was_expected() {
        let (v, why) = judge(&gate(), &answer(503, ""));
        assert_eq!(v, Verdict::Fail);
        assert_eq!(why, "status 503, expected 200");
    }

    #[test]
    fn body_and_json_expectations_must_all_hold() {
        let mut g = gate();
        g.expect_body = Some("ok".into());
        g.expect_json = Some(JsonExpect {
            pointer: "/status".into(),
            equals: json!("ok"),
        });
        let (v, why) = judge(&g, &answer(200, r#"{"status": "ok"}"#));
        assert_eq!(v, Verdict::Pass, "{why}");
        let (v, why) = judge(&g, &answer(200, r#"{"status": "down"}"#));
        assert_eq!(v, Verdict::Fail);
        assert_eq!(why, r#"status 200, body does not contain "ok""#);
        g.expect_body = None;
        let (_, why) = judge(&g, &answer(200, r#"{"status": "degraded"}"#));
        assert_eq!(why, r#"status 200, /status is "degraded", expected "ok""#);
        let (_, why) = judge(&g, &answer(200, r#"{"state": "ok"}"#));
        assert_eq!(why, "status 200, the JSON body has no /status");
        let (_, why) = judge(&g, &answer(200, "ok"));
        assert!(why.starts_with("status 200, body is not JSON"), "{why}");
    }

    #[test]
    fn without_an_expected_status_any_status_may_pass() {
        let mut g = gate();
        g.expect_status = None;
        g.expect_body = Some("alive".into());
        assert_eq!(judge(&g, &answer(500, "alive")).0, Verdict::Pass);
    }
}
