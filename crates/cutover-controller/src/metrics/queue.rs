//! The work queue's gauges, read from the controller at scrape time.

use std::sync::Arc;

use prometheus::PullingGauge;
use prometheus::core::Collector;

use super::LoopReadings;

pub fn collectors(handle: &Arc<dyn LoopReadings>) -> prometheus::Result<Vec<Box<dyn Collector>>> {
    let depth = {
        let handle = Arc::clone(handle);
        PullingGauge::new(
            "cutover_workqueue_depth",
            "Services waiting in the work queue, due or not.",
            Box::new(move || handle.queue_depth() as f64),
        )?
    };
    let oldest = {
        let handle = Arc::clone(handle);
        PullingGauge::new(
            "cutover_workqueue_oldest_item_age_seconds",
            "How long the longest-waiting due service has waited for a worker.",
            Box::new(move || handle.oldest_due_age().as_secs_f64()),
        )?
    };
    let in_flight = {
        let handle = Arc::clone(handle);
        PullingGauge::new(
            "cutover_workqueue_in_flight",
            "Services being reconciled right now.",
            Box::new(move || handle.in_flight() as f64),
        )?
    };
    Ok(vec![Box::new(depth), Box::new(oldest), Box::new(in_flight)])
}
