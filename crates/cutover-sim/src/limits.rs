//! AWS's request budgets, enforced: a call past its category's bucket is
//! throttled, as AWS throttles it. Off unless a scenario asks, so tests of
//! other behaviour are not throttled by accident.
//!
//! Each account and region has its own buckets: ECS "throttles API
//! requests for each AWS account on a per-Region basis"
//! (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/request-throttling.html),
//! and "ELB throttles its API requests for each AWS account on a
//! per-Region basis"
//! (https://docs.aws.amazon.com/elasticloadbalancing/latest/userguide/elb-api-throttling.html).
//! An ECS call for a service draws from its key's scope; an ELB call from
//! the account and region of the ARN it names.

use std::collections::BTreeMap;

use super::faults::ApiGroup;
use crate::cloud::budget::Rate;
use crate::time::Timestamp;

/// The budget of each API group; `None` leaves a group unlimited.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RateLimits {
    pub ecs_read: Option<Rate>,
    pub ecs_mutation: Option<Rate>,
    pub elb_read: Option<Rate>,
    pub elb_mutation: Option<Rate>,
    pub store: Option<Rate>,
}

impl RateLimits {
    /// The whole account's budgets as AWS documents them. DynamoDB meters
    /// capacity per partition rather than requests, so the table is left
    /// unlimited.
    pub fn aws() -> RateLimits {
        RateLimits {
            ecs_read: Some(Rate::new(20.0, 100)),
            ecs_mutation: Some(Rate::new(5.0, 50)),
            elb_read: Some(Rate::new(10.0, 40)),
            elb_mutation: Some(Rate::new(3.0, 20)),
            store: None,
        }
    }

    fn get(&self, group: ApiGroup) -> Option<Rate> {
        match group {
            ApiGroup::EcsRead => self.ecs_read,
            ApiGroup::EcsMutation => self.ecs_mutation,
            ApiGroup::ElbRead => self.elb_read,
            ApiGroup::ElbMutation => self.elb_mutation,
            ApiGroup::Store => self.store,
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct Limiter {
    limits: RateLimits,
    /// Tokens left and when they were counted, per group and place.
    buckets: BTreeMap<(ApiGroup, Place), (f64, Timestamp)>,
    pub throttled: BTreeMap<&'static str, u64>,
    /// The same, by the place each refused call was metered in.
    pub throttled_in: BTreeMap<(Place, &'static str), u64>,
}

/// Where a call is metered: a region and an account.
pub(crate) type Place = (String, String);

impl Limiter {
    pub fn new(limits: RateLimits) -> Limiter {
        Limiter {
            limits,
            ..Limiter::default()
        }
    }

    /// Whether AWS would take this call in `place` now; a refused call is
    /// counted under its operation. A throttled call spends no token, as at
    /// AWS.
    pub fn admit(
        &mut self,
        group: ApiGroup,
        place: &Place,
        op: &'static str,
        now: Timestamp,
    ) -> bool {
        let Some(rate) = self.limits.get(group) else {
            return true;
        };
        let burst = f64::from(rate.burst);
        let (tokens, at) = self
            .buckets
            .entry((group, place.clone()))
            .or_insert((burst, now));
        if now > *at {
            *tokens = (*tokens + now.since(*at).as_secs_f64() * rate.per_second).min(burst);
            *at = now;
        }
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            *self.throttled.entry(op).or_default() += 1;
            *self.throttled_in.entry((place.clone(), op)).or_default() += 1;
            false
        }
    }
}
