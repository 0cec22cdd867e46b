//! A tiny fleet for release tests: service records with their statuses, a
//! store that applies a release's writes the way the controller's
//! conditional writes do, and a stand-in for cutover's own rollouts that
//! a test moves by hand (starts, succeeds, fails) or lets answer the
//! requests a release writes (retry, abort).

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};

use crate::fleet::{MemberView, MemberWrite, Outcome, ReleaseDecision, ReleaseStatus, decide};
use crate::rollout::ServiceKey;
use crate::rollout::control::RolloutId;
use crate::rollout::revision::Revision;
use crate::rollout::status::{Failure, Rollout, Settled, Status};
use crate::time::Timestamp;

pub const OLD: &str = "registry/app:1.4.1";
pub const NEW: &str = "registry/app:1.4.2";

pub fn key(s: &str) -> ServiceKey {
    s.parse().unwrap()
}

/// A service's record as a team writes it.
pub fn record(service: &str, image: &str, labels: Value) -> Value {
    json!({
        "service": service,
        "image": image,
        "container": "app",
        "container_port": 8080,
        "labels": labels,
    })
}

/// The revision a record names: its version, which is all these tests
/// change.
pub fn revision(body: &Value) -> Option<Revision> {
    let version = body
        .get("image")
        .or_else(|| body.get("task_definition"))?
        .as_str()?;
    Some(Revision::from_raw(version.replace(['/', ':'], "-")))
}

pub struct Service {
    pub body: Value,
    pub labels: BTreeMap<String, String>,
    pub updated_at: Option<Value>,
    pub status: Option<Status>,
    /// Whether the record is invalid, as cutover would find it.
    pub invalid: bool,
}

impl Service {
    pub fn revision(&self) -> Option<Revision> {
        if self.invalid {
            None
        } else {
            revision(&self.body)
        }
    }
}

pub struct Fleet {
    pub release: Value,
    pub services: BTreeMap<ServiceKey, Service>,
    pub status: Option<ReleaseStatus>,
    pub halted: Option<String>,
    pub now: Timestamp,
    /// Every write the store applied, in order.
    pub applied: Vec<MemberWrite>,
    /// Writes the store refused.
    pub refused: Vec<MemberWrite>,
}

impl Fleet {
    /// `n` services `prod/svc-00`..., all steady on `OLD`, labelled
    /// `tier = web`.
    pub fn new(release: Value, n: usize) -> Fleet {
        let mut fleet = Fleet {
            release,
            services: BTreeMap::new(),
            status: None,
            halted: None,
            now: Timestamp(1_800_000_000_000),
            applied: Vec::new(),
            refused: Vec::new(),
        };
        for i in 0..n {
            fleet.add(&format!("prod/svc-{i:02}"), json!({"tier": "web"}));
        }
        fleet
    }

    pub fn add(&mut self, service: &str, labels: Value) {
        let body = record(service, OLD, labels.clone());
        let rev = revision(&body).unwrap();
        self.services.insert(
            key(service),
            Service {
                labels: serde_json::from_value(labels).unwrap(),
                updated_at: Some(json!("2026-01-01T00:00:00Z")),
                status: Some(steady(&rev)),
                body,
                invalid: false,
            },
        );
    }

    pub fn views(&self) -> Vec<MemberView<'_>> {
        self.services
            .iter()
            .map(|(k, s)| MemberView {
                key: k.clone(),
                labels: &s.labels,
                body: &s.body,
                updated_at: s.updated_at.clone(),
                status: s.status.as_ref(),
                revision: s.revision(),
            })
            .collect()
    }

    /// One decision, without applying its writes. The status is stored
    /// as the controller stores it (JSON), and read back from there.
    pub fn look(&mut self) -> ReleaseDecision {
        let d = decide(
            &self.release,
            &self.views(),
            self.status.as_ref(),
            self.halted.as_deref(),
            self.now,
        );
        let stored = serde_json::to_value(&d.status).unwrap();
        let back: ReleaseStatus = serde_json::from_value(stored.clone()).unwrap();
        assert_eq!(back, d.status, "the status round-trips: {stored:#}");
        self.status = Some(back);
        d
    }

    /// One decision, its writes applied.
    pub fn decide(&mut self) -> ReleaseDecision {
        let d = self.look();
        self.apply(&d.writes);
        d
    }

    /// Applies writes as a conditional write does: only to a record whose
    /// `updated_at` is still the one the write names.
    pub fn apply(&mut self, writes: &[MemberWrite]) {
        for w in writes {
            let Some(s) = self.services.get_mut(&w.key) else {
                self.refused.push(w.clone());
                continue;
            };
            if s.updated_at != w.unchanged_since {
                self.refused.push(w.clone());
                continue;
            }
            let body = s.body.as_object_mut().unwrap();
            for (name, value) in &w.changes {
                match value {
                    Some(v) => body.insert(name.clone(), v.clone()),
                    None => body.remove(name),
                };
            }
            s.updated_at = body.get("updated_at").cloned();
            self.applied.push(w.clone());
        }
    }

    /// Someone else writes `changes` into a record (and stamps it).
    pub fn someone_writes(&mut self, service: &str, changes: Value) {
        let s = self.services.get_mut(&key(service)).unwrap();
        for (k, v) in changes.as_object().unwrap() {
            s.body[k] = v.clone();
        }
        let stamp = json!(format!(
            "someone-{}",
            self.applied.len() + self.refused.len()
        ));
        s.body["updated_at"] = stamp.clone();
        s.updated_at = Some(stamp);
    }

    pub fn pass(&mut self, d: Duration) {
        self.now = self.now + d;
    }

    pub fn service(&self, service: &str) -> &Service {
        &self.services[&key(service)]
    }

    pub fn image(&self, service: &str) -> &str {
        self.service(service).body["image"].as_str().unwrap_or("")
    }

    /// cutover starts the record's rollout.
    pub fn starts(&mut self, service: &str) {
        let s = self.services.get_mut(&key(service)).unwrap();
        let rev = s.revision().unwrap();
        let from = s.status.as_ref().and_then(|st| st.stable_revision.clone());
        let attempt = match s.status.as_ref().and_then(|st| st.failed.as_ref()) {
            Some(f) if f.rollout.revision == rev => f.rollout.attempt + 1,
            _ => 1,
        };
        s.status = Some(rolling(&rev, from, attempt, s.status.as_ref()));
    }

    /// The record's rollout succeeds (started first if need be).
    pub fn succeeds(&mut self, service: &str) {
        let s = self.services.get_mut(&key(service)).unwrap();
        let rev = s.revision().unwrap();
        s.status = Some(steady(&rev));
    }

    /// The record's rollout fails (started first if need be).
    pub fn fails(&mut self, service: &str) {
        if self
            .service(service)
            .status
            .as_ref()
            .and_then(|s| s.rollout.as_ref())
            .is_none()
        {
            self.starts(service);
        }
        let now = self.now;
        let s = self.services.get_mut(&key(service)).unwrap();
        let st = s.status.as_mut().unwrap();
        let r = st.rollout.take().unwrap();
        st.settled = Settled::Failed;
        st.failed = Some(Failure {
            rollout: r.id,
            reason: "gate task_failures failed".into(),
            at: now,
        });
    }

    /// cutover answers what the records ask: a retry starts the failed
    /// rollout's revision again, an abort fails the rollout in flight.
    pub fn react(&mut self) {
        let keys: Vec<ServiceKey> = self.services.keys().cloned().collect();
        for k in keys {
            let service = k.to_string();
            let s = &self.services[&k];
            let (Some(st), Some(rev)) = (&s.status, s.revision()) else {
                continue;
            };
            let asks = |what: &str, id: &RolloutId| {
                s.body["control"][what].as_str() == Some(id.to_string().as_str())
            };
            if let Some(r) = &st.rollout
                && asks("abort", &r.id)
            {
                self.fails(&service);
            } else if st.rollout.is_none()
                && let Some(f) = &st.failed
                && f.rollout.revision == rev
                && asks("retry", &f.rollout)
            {
                self.starts(&service);
            }
        }
    }

    pub fn outcome(&self, service: &str) -> Outcome {
        self.status
            .as_ref()
            .unwrap()
            .members()
            .find(|m| m.service == key(service))
            .map(|m| m.outcome)
            .unwrap()
    }

    pub fn wave_of(&self, service: &str) -> usize {
        self.status
            .as_ref()
            .unwrap()
            .waves
            .iter()
            .position(|w| w.members.iter().any(|m| m.service == key(service)))
            .unwrap()
    }

    /// The members of each wave, as service names.
    pub fn waves(&self) -> Vec<Vec<String>> {
        self.status
            .as_ref()
            .unwrap()
            .waves
            .iter()
            .map(|w| w.members.iter().map(|m| m.service.to_string()).collect())
            .collect()
    }
}

pub fn steady(rev: &Revision) -> Status {
    Status {
        observed_revision: Some(rev.clone()),
        stable_revision: Some(rev.clone()),
        message: format!("steady on revision {rev}"),
        ..Status::default()
    }
}

pub fn rolling(
    rev: &Revision,
    from: Option<Revision>,
    attempt: u32,
    was: Option<&Status>,
) -> Status {
    let id = RolloutId {
        revision: rev.clone(),
        attempt,
    };
    Status {
        observed_revision: Some(rev.clone()),
        stable_revision: from,
        rollout: Some(Rollout::new(id, None, String::new(), Timestamp(0))),
        failed: was.and_then(|s| s.failed.clone()),
        message: "provisioning".into(),
        ..Status::default()
    }
}

/// The keys written by `writes`, as service names.
pub fn written(writes: &[MemberWrite]) -> Vec<String> {
    writes.iter().map(|w| w.key.to_string()).collect()
}

/// The release record most tests use: two services first, then half,
/// then all, halting on the first failure.
pub fn release(extra: Value) -> Value {
    let mut r = json!({
        "service": "release:base-image",
        "selector": {"tier": "web"},
        "set": {"image": NEW},
        "waves": [{"services": 2}, {"percent": 50}, {"percent": 100}],
    });
    for (k, v) in extra.as_object().unwrap() {
        if v.is_null() {
            r.as_object_mut().unwrap().remove(k);
        } else {
            r[k] = v.clone();
        }
    }
    r
}
