//! The change feed's gauge and counters, read from the controller at scrape
//! time: whether this replica reads the table's stream itself, and how the
//! relay serves it when it does not.

use std::sync::Arc;

use prometheus::core::{Collector, Desc};
use prometheus::proto::{Gauge, Metric, MetricFamily, MetricType};

use super::LoopReadings;
use super::aws::{counter, desc, family};

const READER: &str = "cutover_stream_reader";
const POLLS: &str = "cutover_relay_polls_total";
const LISTINGS: &str = "cutover_relay_listings_total";

pub struct FeedCollector {
    handle: Arc<dyn LoopReadings>,
    descs: [Desc; 3],
}

impl FeedCollector {
    pub fn new(handle: Arc<dyn LoopReadings>) -> prometheus::Result<Self> {
        Ok(FeedCollector {
            handle,
            descs: [
                desc(
                    READER,
                    "1 while this replica reads the table's change stream itself (at most two replicas do), 0 while it follows the relay.",
                    &[],
                )?,
                desc(
                    POLLS,
                    "Polls of the relay items of this replica's shards, made while it did not read the stream.",
                    &[],
                )?,
                desc(
                    LISTINGS,
                    "Shards whose records this replica listed because the relay could not say what changed: first seen, or more changed than the relay keeps.",
                    &[],
                )?,
            ],
        })
    }
}

impl Collector for FeedCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let mut reader = Gauge::default();
        reader.set_value(if self.handle.reads_stream() { 1.0 } else { 0.0 });
        let mut reading = Metric::default();
        reading.set_gauge(reader);
        let [r, p, l] = &self.descs;
        vec![
            family(&r.fq_name, &r.help, MetricType::GAUGE, vec![reading]),
            family(
                &p.fq_name,
                &p.help,
                MetricType::COUNTER,
                vec![counter(&[], self.handle.relay_polls() as f64)],
            ),
            family(
                &l.fq_name,
                &l.help,
                MetricType::COUNTER,
                vec![counter(&[], self.handle.relay_listings() as f64)],
            ),
        ]
    }
}
