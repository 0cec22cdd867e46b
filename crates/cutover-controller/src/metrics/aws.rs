//! AWS request metrics, read from [`ApiCalls`] at scrape time. The SDK
//! interceptor keeps counting into `ApiCalls` as it does for the tests; this
//! only translates its snapshot, so there is one source of truth.

use std::collections::{BTreeMap, HashMap};

use prometheus::core::{Collector, Desc};
use prometheus::proto::{Bucket, Counter, Histogram, LabelPair, Metric, MetricFamily, MetricType};

use crate::cloud::calls::{ApiCalls, CallStats, LATENCY_BUCKETS, Outcome};

const REQUESTS: &str = "cutover_aws_requests_total";
const DURATION: &str = "cutover_aws_request_duration_seconds";
const THROTTLES: &str = "cutover_aws_throttles_total";

pub struct ApiCallsCollector {
    calls: ApiCalls,
    descs: [Desc; 3],
}

pub(super) fn desc(name: &str, help: &str, labels: &[&str]) -> prometheus::Result<Desc> {
    Desc::new(
        name.to_string(),
        help.to_string(),
        labels.iter().map(|l| l.to_string()).collect(),
        HashMap::new(),
    )
}

/// Sorted by name, as the crate's own metrics print theirs.
pub(super) fn labels(pairs: &[(&str, &str)]) -> Vec<LabelPair> {
    let mut pairs = pairs.to_vec();
    pairs.sort_unstable();
    pairs
        .iter()
        .map(|(name, value)| {
            let mut l = LabelPair::default();
            l.set_name(name.to_string());
            l.set_value(value.to_string());
            l
        })
        .collect()
}

pub(super) fn family(
    name: &str,
    help: &str,
    kind: MetricType,
    metrics: Vec<Metric>,
) -> MetricFamily {
    let mut f = MetricFamily::default();
    f.set_name(name.to_string());
    f.set_help(help.to_string());
    f.set_field_type(kind);
    f.set_metric(metrics);
    f
}

pub(super) fn counter(pairs: &[(&str, &str)], value: f64) -> Metric {
    let mut c = Counter::default();
    c.set_value(value);
    let mut m = Metric::from_label(labels(pairs));
    m.set_counter(c);
    m
}

impl ApiCallsCollector {
    pub fn new(calls: ApiCalls) -> prometheus::Result<Self> {
        Ok(ApiCallsCollector {
            calls,
            descs: [
                desc(
                    REQUESTS,
                    "AWS request attempts (SDK retries included), by service, operation and outcome.",
                    &["service", "operation", "outcome"],
                )?,
                desc(
                    DURATION,
                    "Latency of AWS request attempts, by service and operation.",
                    &["service", "operation"],
                )?,
                desc(
                    THROTTLES,
                    "AWS request attempts refused by rate limiting, by service and operation.",
                    &["service", "operation"],
                )?,
            ],
        })
    }
}

impl Collector for ApiCallsCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let snapshot = self.calls.snapshot();
        let mut requests = Vec::new();
        // Latency is per operation whatever the outcome: a throttle's
        // latency is as much a cost as a success's.
        let mut latency: BTreeMap<(&str, &str), CallStats> = BTreeMap::new();
        let mut throttles: BTreeMap<(&str, &str), u64> = BTreeMap::new();
        for (key, stats) in &snapshot {
            let op = (key.service, key.operation);
            requests.push(counter(
                &[
                    ("service", key.service),
                    ("operation", key.operation),
                    ("outcome", key.outcome.as_str()),
                ],
                stats.count as f64,
            ));
            let merged = latency.entry(op).or_default();
            merged.count += stats.count;
            merged.latency_sum += stats.latency_sum;
            for (sum, n) in merged.latency_buckets.iter_mut().zip(stats.latency_buckets) {
                *sum += n;
            }
            let throttled = throttles.entry(op).or_default();
            if key.outcome == Outcome::Throttled {
                *throttled += stats.count;
            }
        }
        let durations = latency
            .into_iter()
            .map(|((service, operation), stats)| {
                let mut h = Histogram::default();
                h.set_sample_count(stats.count);
                h.set_sample_sum(stats.latency_sum.as_secs_f64());
                h.set_bucket(
                    LATENCY_BUCKETS
                        .iter()
                        .zip(stats.latency_buckets)
                        .map(|(bound, n)| {
                            let mut b = Bucket::default();
                            b.set_upper_bound(bound.as_secs_f64());
                            b.set_cumulative_count(n);
                            b
                        })
                        .collect(),
                );
                let mut m =
                    Metric::from_label(labels(&[("service", service), ("operation", operation)]));
                m.set_histogram(h);
                m
            })
            .collect();
        let throttles = throttles
            .into_iter()
            .map(|((service, operation), n)| {
                counter(&[("service", service), ("operation", operation)], n as f64)
            })
            .collect();
        let [r, d, t] = &self.descs;
        vec![
            family(REQUESTS, &r.help, MetricType::COUNTER, requests),
            family(DURATION, &d.help, MetricType::HISTOGRAM, durations),
            family(THROTTLES, &t.help, MetricType::COUNTER, throttles),
        ]
    }
}
