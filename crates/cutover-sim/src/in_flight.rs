//! Writes in flight, for DynamoDB's transaction conflicts.
//!
//! DynamoDB rejects a write that arrives while a transaction on the same
//! item is under way: a `PutItem`, `UpdateItem` or `DeleteItem` fails with
//! `TransactionConflictException`, and a `TransactWriteItems` one of whose
//! items (a `ConditionCheck` included) is part of another transaction in
//! flight is cancelled with the reason `TransactionConflict`
//! (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html#transaction-conflict-handling,
//! and TransactionCanceledException,
//! https://docs.aws.amazon.com/botocore/latest/reference/services/dynamodb/client/exceptions/TransactionCanceledException.html).
//! The guide does not say how a transaction fares against a plain write
//! already in flight on one of its items; the worst case is modelled: it is
//! cancelled too. Two plain writes never conflict (DynamoDB serialises them).
//! A write is in flight from the moment it reaches the table until it is
//! applied, the latency the simulation gives the call.

use std::collections::{BTreeMap, BTreeSet};

use super::SimCloud;
use crate::cloud::lease::{Shard, stable_hash};
use crate::cloud::{CloudError, ErrorKind};
use crate::rollout::{ServiceKey, Status};

/// One item a write touches.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum ItemRef {
    /// A record of the desired-state table, by its `service` attribute.
    Record(String),
    /// A shard's lease item in the lease table.
    Lease(Shard),
}

impl ItemRef {
    pub fn record(key: &ServiceKey) -> ItemRef {
        ItemRef::Record(key.to_string())
    }
}

#[derive(Debug)]
struct Ongoing {
    items: Vec<ItemRef>,
    transaction: bool,
}

#[derive(Debug, Default)]
pub(crate) struct InFlight {
    next: u64,
    ongoing: BTreeMap<u64, Ongoing>,
    /// Writes rejected so far because of a conflicting write in flight.
    pub conflicts: u64,
    /// Status writes (record, expected version, status) cancelled for a
    /// conflict and not sent again to an answer since: each is a decided
    /// status lost to the conflict.
    unanswered: BTreeSet<(String, u64, u64)>,
}

impl InFlight {
    /// A write arriving now: `None` when it conflicts with one already in
    /// flight (it is then rejected and holds nothing), otherwise the ticket
    /// to hand back once it is applied.
    pub fn arrive(&mut self, items: Vec<ItemRef>, transaction: bool) -> Option<u64> {
        let conflicts = self
            .ongoing
            .values()
            .any(|o| (transaction || o.transaction) && o.items.iter().any(|i| items.contains(i)));
        if conflicts {
            self.conflicts += 1;
            return None;
        }
        self.next += 1;
        self.ongoing
            .insert(self.next, Ongoing { items, transaction });
        Some(self.next)
    }

    /// A write of `status` at `expected` was cancelled for a conflict.
    pub fn cancelled(&mut self, key: &ServiceKey, expected: u64, status: &Status) {
        self.unanswered.insert(written(key, expected, status));
    }

    /// The same write got an answer (written, or refused for a reason of
    /// its own): the earlier cancellation lost nothing.
    pub fn answered(&mut self, key: &ServiceKey, expected: u64, status: &Status) {
        self.unanswered.remove(&written(key, expected, status));
    }

    pub fn leave(&mut self, ticket: u64) {
        self.ongoing.remove(&ticket);
    }
}

/// One status write: the record, the version it expects, and a hash of the
/// status it carries.
fn written(key: &ServiceKey, expected: u64, status: &Status) -> (String, u64, u64) {
    let text = serde_json::to_string(status).unwrap_or_default();
    (key.to_string(), expected, stable_hash(&text))
}

/// What a plain write rejected for a transaction in flight answers, as the
/// AWS adapters would see it.
pub(crate) fn plain_write_conflict(op: &'static str) -> CloudError {
    CloudError::new(
        ErrorKind::Other,
        op,
        "TransactionConflictException: Operation was rejected because there is an ongoing \
         transaction for the item",
    )
}

/// A write in flight on the table, from its arrival until the call ends
/// however it ends (an early return, a dropped future).
pub(crate) struct Flight<'a> {
    cloud: &'a SimCloud,
    ticket: Option<u64>,
}

impl Flight<'_> {
    /// Rejected on arrival: another write on one of its items was in flight.
    pub fn conflicted(&self) -> bool {
        self.ticket.is_none()
    }
}

impl Drop for Flight<'_> {
    fn drop(&mut self) {
        if let (Some(ticket), Ok(mut w)) = (self.ticket, self.cloud.inner.world.lock()) {
            w.in_flight.leave(ticket);
        }
    }
}

impl SimCloud {
    /// A write reaching the table now, touching `items`.
    pub(crate) fn arrive(&self, items: Vec<ItemRef>, transaction: bool) -> Flight<'_> {
        let ticket = self.world().in_flight.arrive(items, transaction);
        Flight {
            cloud: self,
            ticket,
        }
    }

    /// Writes rejected so far because a conflicting write was in flight.
    pub fn transaction_conflicts(&self) -> u64 {
        self.world().in_flight.conflicts
    }

    /// Fenced status writes cancelled for a conflict and never sent again
    /// to an answer: each is a decision whose status was lost.
    pub fn status_writes_lost_to_conflicts(&self) -> usize {
        self.world().in_flight.unanswered.len()
    }
}
