//! Answers items whose `service` attribute is not `<cluster>/<service>`.
//! They name no service, so they never enter the work queue; each resync
//! gives each one its `Invalid` status (written once: deciding again from
//! it changes nothing) and warns once per key and value, not on every scan.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::cloud::lease::stable_hash;
use crate::cloud::{Clock, DesiredStore, StatusWrite, UnkeyedRecord};
use crate::rollout::revision::canonical_json;
use crate::rollout::unkeyed::{self, quote_key};
use crate::rollout::{Status, trim};

use super::shards::Ownership;

/// The most items remembered as warned about. Past it, an item is warned
/// about again at each resync: memory stays bounded whatever the table holds.
pub const REMEMBERED: usize = 10_000;

pub struct Unkeyed {
    pub store: Arc<dyn DesiredStore>,
    pub clock: Arc<dyn Clock>,
    pub ownership: Option<Arc<Ownership>>,
    /// Each item warned about, by its `service` text, with a fingerprint
    /// of its attributes: a rewrite of the item is warned about again.
    warned: Mutex<BTreeMap<String, u64>>,
}

impl Unkeyed {
    pub fn new(
        store: Arc<dyn DesiredStore>,
        clock: Arc<dyn Clock>,
        ownership: Option<Arc<Ownership>>,
    ) -> Self {
        Unkeyed {
            store,
            clock,
            ownership,
            warned: Mutex::new(BTreeMap::new()),
        }
    }

    /// Answers every item of one complete listing. A write that fails is
    /// tried again at the next resync, which paces it.
    pub async fn answer(&self, items: Vec<UnkeyedRecord>) {
        let items: Vec<UnkeyedRecord> = items
            .into_iter()
            // The halt and releases are answered by their own readers.
            .filter(|i| !crate::rollout::items::is_fleet_item(&i.given))
            .filter(|i| {
                self.ownership
                    .as_ref()
                    .is_none_or(|o| o.owns_text(&i.given))
            })
            .collect();
        self.remember_only(&items);
        for item in items {
            self.warn_once(&item);
            let previous = item.status.clone().unwrap_or_default();
            let status = unkeyed::status(&item.given, &item.error, &previous, self.clock.now());
            if item.status.as_ref() != Some(&status) {
                self.write(&item, status).await;
            }
        }
    }

    /// Forgets items that are gone (fixed, or deleted), so the memory holds
    /// only what the table still holds.
    fn remember_only(&self, items: &[UnkeyedRecord]) {
        let mut warned = self.warned.lock().unwrap_or_else(|e| e.into_inner());
        let listed: std::collections::BTreeSet<&str> =
            items.iter().map(|i| i.given.as_str()).collect();
        warned.retain(|given, _| listed.contains(given.as_str()));
    }

    fn warn_once(&self, item: &UnkeyedRecord) {
        let fingerprint = fingerprint(&item.body);
        let mut warned = self.warned.lock().unwrap_or_else(|e| e.into_inner());
        if warned.get(&item.given) == Some(&fingerprint) {
            return;
        }
        if warned.len() < REMEMBERED || warned.contains_key(&item.given) {
            warned.insert(item.given.clone(), fingerprint);
        }
        drop(warned);
        tracing::warn!(
            service = %quote_key(&item.given),
            reason = item.error.why,
            "a record's key is not <cluster>/<service>: nothing is deployed from it, and its status says how to fix it"
        );
    }

    async fn write(&self, item: &UnkeyedRecord, status: Status) {
        let service = quote_key(&item.given);
        let expected = item.status_version;
        let mut written = self
            .store
            .write_unkeyed_status(&item.given, expected, &status)
            .await;
        if matches!(written, Ok(StatusWrite::TooLarge)) {
            let trimmed = trim::trimmed(&status);
            if item.status.as_ref() == Some(&trimmed) {
                return;
            }
            written = self
                .store
                .write_unkeyed_status(&item.given, expected, &trimmed)
                .await;
        }
        match written {
            Ok(StatusWrite::Written { .. }) => {
                tracing::debug!(service = %service, "status Invalid written");
            }
            Ok(StatusWrite::TooLarge) => tracing::warn!(
                service = %service,
                "the item leaves no room for a status, even trimmed; retrying at the next resync"
            ),
            Ok(
                StatusWrite::Conflict
                | StatusWrite::Contended
                | StatusWrite::Gone
                | StatusWrite::Fenced,
            ) => {
                tracing::debug!(service = %service, "the item changed meanwhile; the next resync reads it again");
            }
            Err(e) => tracing::warn!(
                service = %service,
                operation = e.operation,
                error_kind = e.kind.as_str(),
                request_id = e.request_id.as_deref().unwrap_or(""),
                "writing the status failed; retrying at the next resync: {e}"
            ),
        }
    }
}

/// The same for the same attributes in any order: DynamoDB hands an item's
/// attributes over in no particular order.
fn fingerprint(body: &serde_json::Value) -> u64 {
    stable_hash(&String::from_utf8_lossy(&canonical_json(body)))
}

#[cfg(test)]
mod tests {
    use serde_json::{Map, Value, json};

    use super::fingerprint;

    fn object(pairs: &[(&str, Value)]) -> Value {
        Value::Object(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect::<Map<_, _>>(),
        )
    }

    #[test]
    fn the_readme_states_how_many_items_are_remembered() {
        let readme = include_str!("../../../../README.md");
        let readme = readme.split_whitespace().collect::<Vec<_>>().join(" ");
        let n = super::REMEMBERED.to_string();
        let (thousands, rest) = n.split_at(n.len() - 3);
        let stated = format!("past {thousands},{rest} such items");
        assert!(readme.contains(&stated), "README: {stated}");
    }

    #[test]
    fn the_same_attributes_in_another_order_are_the_same_value() {
        let a = object(&[
            ("service", json!("prod")),
            ("task_definition", json!("web:2")),
        ]);
        let b = object(&[
            ("task_definition", json!("web:2")),
            ("service", json!("prod")),
        ]);
        assert_eq!(fingerprint(&a), fingerprint(&b));
        let c = object(&[
            ("service", json!("prod")),
            ("task_definition", json!("web:3")),
        ]);
        assert_ne!(fingerprint(&a), fingerprint(&c));
    }
}
