//! The Prometheus gate: an instant query whose one value is held against
//! the gate's bounds.

use serde_json::Value;

use crate::rollout::gate::{NoData, PrometheusGate, Verdict};

use super::fetch;

pub async fn read(client: &reqwest::Client, gate: &PrometheusGate) -> (Verdict, String) {
    let url = format!("{}/api/v1/query", gate.address.trim_end_matches('/'));
    let request = client.get(url).query(&[("query", gate.query.as_str())]);
    let answer = match fetch::send(request, gate.timeout).await {
        Ok(answer) => answer,
        Err(failure) => return (Verdict::Fail, format!("Prometheus: {failure}")),
    };
    let body: Value = match serde_json::from_slice(&answer.body) {
        Ok(v) => v,
        Err(_) => {
            return (
                Verdict::Fail,
                format!(
                    "Prometheus answered {} with a body that is not its JSON",
                    answer.status
                ),
            );
        }
    };
    match value(&body) {
        Ok(Sample::Value(v)) if v.is_nan() => no_data(gate.on_nan, "NaN", "on_nan"),
        Ok(Sample::Value(v)) => compare(gate, v),
        Ok(Sample::Empty) => no_data(gate.on_empty, "no data", "on_empty"),
        Err(why) => (Verdict::Fail, why),
    }
}

enum Sample {
    Value(f64),
    Empty,
}

/// The one value of a `scalar` or single-sample `vector` answer.
fn value(body: &Value) -> Result<Sample, String> {
    if body["status"] != "success" {
        let kind = body["errorType"].as_str().unwrap_or("error");
        let error = body["error"].as_str().unwrap_or("no message");
        return Err(format!("Prometheus refused the query: {kind}: {error}"));
    }
    let data = &body["data"];
    let pair = match data["resultType"].as_str() {
        Some("scalar") => &data["result"],
        Some("vector") => match data["result"].as_array().map(Vec::as_slice) {
            Some([]) => return Ok(Sample::Empty),
            Some([one]) => &one["value"],
            Some(many) => {
                return Err(format!(
                    "the query returned {} series; a gate needs one (aggregate with sum(), max() or avg())",
                    many.len()
                ));
            }
            None => return Err("the vector result is not a list".into()),
        },
        Some(other) => {
            return Err(format!(
                "the query returned a {other}; a gate needs a scalar or a single-sample vector"
            ));
        }
        None => return Err("the answer has no data.resultType".into()),
    };
    // Prometheus sends [<time>, "<value>"], the value as text so that NaN
    // and ±Inf survive JSON.
    let text = pair[1]
        .as_str()
        .ok_or_else(|| "the sample has no value".to_string())?;
    parse(text)
        .map(Sample::Value)
        .ok_or_else(|| format!("the sample value {text:?} is not a number"))
}

fn parse(text: &str) -> Option<f64> {
    match text {
        "NaN" => Some(f64::NAN),
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        _ => text.parse().ok(),
    }
}

fn no_data(rule: NoData, what: &str, field: &str) -> (Verdict, String) {
    match rule {
        NoData::Fail => (Verdict::Fail, format!("the query returned {what}")),
        NoData::Pass => (
            Verdict::Pass,
            format!("the query returned {what}, which passes ({field} = pass)"),
        ),
        NoData::Wait => (
            Verdict::Inconclusive,
            format!("the query returned {what}; waiting for data ({field} = wait)"),
        ),
    }
}

fn compare(gate: &PrometheusGate, v: f64) -> (Verdict, String) {
    if let Some(max) = gate.max
        && v > max
    {
        return (Verdict::Fail, format!("value {v} is above max {max}"));
    }
    if let Some(min) = gate.min
        && v < min
    {
        return (Verdict::Fail, format!("value {v} is below min {min}"));
    }
    let bounds = match (gate.min, gate.max) {
        (Some(min), Some(max)) => format!("min {min}, max {max}"),
        (Some(min), None) => format!("min {min}"),
        (None, Some(max)) => format!("max {max}"),
        (None, None) => "no bound".into(),
    };
    (Verdict::Pass, format!("value {v} ({bounds})"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn sample(body: Value) -> Result<Option<f64>, String> {
        value(&body).map(|s| match s {
            Sample::Value(v) => Some(v),
            Sample::Empty => None,
        })
    }

    #[test]
    fn scalars_and_single_sample_vectors_have_a_value() {
        let scalar =
            json!({"status": "success", "data": {"resultType": "scalar", "result": [1.0, "0.25"]}});
        assert_eq!(sample(scalar), Ok(Some(0.25)));
        let vector = json!({"status": "success", "data": {"resultType": "vector",
            "result": [{"metric": {}, "value": [1.0, "3"]}]}});
        assert_eq!(sample(vector), Ok(Some(3.0)));
        let empty = json!({"status": "success", "data": {"resultType": "vector", "result": []}});
        assert_eq!(sample(empty), Ok(None));
        let nan =
            json!({"status": "success", "data": {"resultType": "scalar", "result": [1.0, "NaN"]}});
        assert!(sample(nan).unwrap().unwrap().is_nan());
        let inf =
            json!({"status": "success", "data": {"resultType": "scalar", "result": [1.0, "+Inf"]}});
        assert_eq!(sample(inf), Ok(Some(f64::INFINITY)));
    }

    #[test]
    fn several_series_matrices_and_errors_are_refused() {
        let many = json!({"status": "success", "data": {"resultType": "vector", "result": [
            {"metric": {"a": "1"}, "value": [1.0, "1"]}, {"metric": {"a": "2"}, "value": [1.0, "2"]}]}});
        assert!(sample(many).unwrap_err().contains("2 series"));
        let matrix = json!({"status": "success", "data": {"resultType": "matrix", "result": []}});
        assert!(sample(matrix).unwrap_err().contains("matrix"));
        let error = json!({"status": "error", "errorType": "bad_data", "error": "parse error"});
        assert_eq!(
            sample(error).unwrap_err(),
            "Prometheus refused the query: bad_data: parse error"
        );
    }
}
