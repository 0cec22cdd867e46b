//! The request budgets' counters, read from [`ApiBudgets`] at scrape time.

use std::sync::Arc;

use prometheus::core::{Collector, Desc};
use prometheus::proto::{MetricFamily, MetricType};

use super::aws::{counter, desc, family};

use crate::cloud::budget::{ApiBudgets, Category, Priority};

const TOKENS: &str = "cutover_budget_tokens_total";
const WAITS: &str = "cutover_budget_waits_total";
const WAIT_SECONDS: &str = "cutover_budget_wait_seconds_total";

pub struct BudgetCollector {
    budgets: Arc<ApiBudgets>,
    descs: [Desc; 3],
}

impl BudgetCollector {
    pub fn new(budgets: Arc<ApiBudgets>) -> prometheus::Result<Self> {
        Ok(BudgetCollector {
            budgets,
            descs: [
                desc(
                    TOKENS,
                    "Request tokens taken from cutover's AWS budgets, by API category and priority.",
                    &["category", "priority"],
                )?,
                desc(
                    WAITS,
                    "AWS calls that waited for their budget's token, by API category.",
                    &["category"],
                )?,
                desc(
                    WAIT_SECONDS,
                    "Time AWS calls spent waiting for their budget's token, by API category.",
                    &["category"],
                )?,
            ],
        })
    }
}

impl Collector for BudgetCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let (mut tokens, mut waits, mut seconds) = (vec![], vec![], vec![]);
        for c in Category::ALL {
            let stats = self.budgets.stats(c);
            for (p, n) in Priority::ALL.iter().zip(stats.tokens) {
                tokens.push(counter(
                    &[("category", c.as_str()), ("priority", p.as_str())],
                    n as f64,
                ));
            }
            waits.push(counter(&[("category", c.as_str())], stats.waited as f64));
            seconds.push(counter(
                &[("category", c.as_str())],
                stats.wait_time.as_secs_f64(),
            ));
        }
        let family = |d: &Desc, metrics| family(&d.fq_name, &d.help, MetricType::COUNTER, metrics);
        let [t, w, s] = &self.descs;
        vec![family(t, tokens), family(w, waits), family(s, seconds)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::budget::BudgetConfig;
    use crate::cloud::{Clock, ScaledClock};
    use crate::time::Timestamp;

    #[tokio::test(start_paused = true)]
    async fn tokens_and_waits_are_exported_by_category_and_priority() {
        let clock: Arc<dyn Clock> = Arc::new(ScaledClock::new(Timestamp::from_millis(0), 1.0));
        let config = BudgetConfig {
            share: 1.0,
            cloudwatch: crate::cloud::budget::Rate::new(1.0, 1),
            ..BudgetConfig::default()
        };
        let budgets = ApiBudgets::new(&config, clock);
        budgets
            .acquire_at(Category::EcsRead, Priority::Steady)
            .await;
        // The second CloudWatch call waits a second for its token.
        for _ in 0..2 {
            budgets
                .acquire_at(Category::CloudWatch, Priority::Rollout)
                .await;
        }
        let registry = prometheus::Registry::new();
        registry
            .register(Box::new(BudgetCollector::new(budgets).unwrap()))
            .unwrap();
        let text = prometheus::TextEncoder::new()
            .encode_to_string(&registry.gather())
            .unwrap();
        for line in [
            r#"cutover_budget_tokens_total{category="ecs_read",priority="steady"} 1"#,
            r#"cutover_budget_tokens_total{category="cloudwatch",priority="rollout"} 2"#,
            r#"cutover_budget_waits_total{category="cloudwatch"} 1"#,
            r#"cutover_budget_wait_seconds_total{category="cloudwatch"} 1"#,
        ] {
            assert!(text.contains(line), "{line} missing from:\n{text}");
        }
    }
}
