//! Who a release deploys, and in which wave. Worked out once, when the
//! release starts, and kept in its status: a restart, a label change or a
//! selector edited later never reshuffles services between waves, and a
//! service that matches the selector later is not added (write another
//! release for it).

use std::collections::BTreeSet;

use super::member::MemberView;
use super::release::{Release, WaveSize};
use crate::rollout::key::ServiceKey;

/// The services of a release, by key (so their order is stable), and the
/// keys it lists that have no record.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Membership {
    pub members: Vec<ServiceKey>,
    pub missing: Vec<ServiceKey>,
}

/// The services listed by key that have a record, and every record whose
/// labels hold all the selector's pairs.
pub fn membership(release: &Release, records: &[MemberView<'_>]) -> Membership {
    let present: BTreeSet<&ServiceKey> = records.iter().map(|r| &r.key).collect();
    let mut members: BTreeSet<ServiceKey> = release
        .services
        .iter()
        .filter(|k| present.contains(k))
        .cloned()
        .collect();
    if let Some(selector) = &release.selector {
        members.extend(
            records
                .iter()
                .filter(|r| selector.iter().all(|(k, v)| r.labels.get(k) == Some(v)))
                .map(|r| r.key.clone()),
        );
    }
    let missing = release
        .services
        .iter()
        .filter(|k| !present.contains(k))
        .cloned()
        .collect();
    Membership {
        members: members.into_iter().collect(),
        missing,
    }
}

/// How many services each wave holds in all, for `members` services. A
/// percentage is rounded up, so 10% of 3 services is one; every wave holds
/// at least one more than the wave before (a share too small to add
/// anybody still moves the release on); waves that would add nobody
/// because everybody is already in are dropped, and if the last wave
/// written leaves services out, the rest are one more, final wave.
pub fn wave_sizes(waves: &[WaveSize], members: usize) -> Vec<usize> {
    let mut sizes: Vec<usize> = Vec::new();
    for wave in waves {
        let before = sizes.last().copied().unwrap_or(0);
        if before >= members {
            break;
        }
        let wanted = match *wave {
            WaveSize::Services(n) => n as usize,
            WaveSize::Percent(p) => (p as usize * members).div_ceil(100),
        };
        sizes.push(wanted.max(before + 1).min(members));
    }
    if sizes.last().copied().unwrap_or(0) < members {
        sizes.push(members);
    }
    sizes
}

/// The services new in each wave, in key order.
pub fn waves(members: &[ServiceKey], sizes: &[usize]) -> Vec<Vec<ServiceKey>> {
    let mut from = 0;
    sizes
        .iter()
        .map(|&to| {
            let wave = members[from..to].to_vec();
            from = to;
            wave
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waves_count_from_the_start_and_round_shares_up() {
        use WaveSize::*;
        for (waves, n, want) in [
            (
                vec![Services(1), Percent(25), Percent(100)],
                20,
                vec![1, 5, 20],
            ),
            (
                vec![Services(1), Percent(25), Percent(100)],
                3,
                vec![1, 2, 3],
            ),
            (vec![Percent(10)], 3, vec![1, 3]),
            (vec![Services(2), Services(5)], 20, vec![2, 5, 20]),
            (vec![Services(50)], 20, vec![20]),
            (vec![Percent(100), Services(3)], 4, vec![4]),
            (
                vec![Percent(1), Percent(2), Percent(3)],
                10,
                vec![1, 2, 3, 10],
            ),
            (vec![Services(5), Percent(10)], 20, vec![5, 6, 20]),
            (vec![Services(1)], 1, vec![1]),
            (vec![Services(1)], 0, vec![]),
        ] {
            assert_eq!(wave_sizes(&waves, n), want, "{waves:?} of {n}");
        }
    }
}
