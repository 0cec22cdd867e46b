//! Items of the records table that hold no service's record but the
//! fleet's own controls: the halt, and releases. Their keys cannot be
//! service keys (they have no '/'), so a record can never be taken for one.

use super::halt::HALT_ITEM;

/// The key of a release's item: `release:<name>`.
pub const RELEASE_PREFIX: &str = "release:";

/// Whether the item under `given` is one of the fleet's own, answered by
/// the halt watch or the releases rather than as a mis-keyed record.
pub fn is_fleet_item(given: &str) -> bool {
    given == HALT_ITEM || given.starts_with(RELEASE_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fleets_items_are_never_service_keys() {
        for given in [HALT_ITEM, "release:base-image"] {
            assert!(is_fleet_item(given));
            assert!(given.parse::<crate::rollout::ServiceKey>().is_err());
        }
        assert!(!is_fleet_item("prod/web"));
        assert!(!is_fleet_item("halted"));
    }
}
