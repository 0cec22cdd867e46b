//! Properties of the decision over generated strategies and texts, where the
//! other tests pick their examples by hand.

use proptest::prelude::*;
use proptest::strategy::Strategy as _;
use serde_json::{Value, json};

use super::fixture::{BLUE, GREEN, World, record};
use crate::rollout::trim::cut;
use crate::rollout::{Phase, Step, Strategy};

/// A strategy as a record writes it: canary, linear or a step list whose
/// weights only grow, with pauses between them.
fn strategy() -> impl proptest::strategy::Strategy<Value = Value> {
    prop_oneof![
        Just(json!("all_at_once")),
        (1u8..=99, 1u64..=120).prop_map(
            |(p, s)| json!({"type": "canary", "percent": p, "interval": format!("{s}s")})
        ),
        (5u8..=99, 1u64..=120).prop_map(
            |(p, s)| json!({"type": "linear", "percent": p, "interval": format!("{s}s")})
        ),
        prop::collection::vec((0u8..=100, prop::option::of(1u64..=90)), 1..8).prop_map(|raw| {
            let mut weights: Vec<u8> = raw.iter().map(|(w, _)| *w).collect();
            weights.sort_unstable();
            let steps: Vec<Value> = weights
                .iter()
                .zip(raw.iter().map(|(_, pause)| *pause))
                .flat_map(|(w, pause)| {
                    let mut s = vec![json!({"set_weight": w})];
                    s.extend(pause.map(|p| json!({"pause": format!("{p}s")})));
                    s
                })
                .collect();
            json!({"type": "steps", "steps": steps})
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Whatever the strategy, a healthy candidate ends with all of
    /// production, the share it is given never shrinks on the way, and every
    /// weight written is a whole percentage of one pair summing to 100.
    #[test]
    fn a_healthy_candidate_reaches_all_traffic_without_ever_giving_any_back(strategy in strategy()) {
        let mut w = World::new(record("web:2", strategy.clone()));
        prop_assert_eq!(w.settle(), Phase::Steady, "{} with {}", w.status.message, strategy);
        prop_assert_eq!(w.production.percent(GREEN), 100);
        prop_assert_eq!(w.production.percent(BLUE), 0);
        prop_assert!(
            w.weight_log.windows(2).all(|p| p[0] <= p[1]),
            "shares written {:?} with {}", w.weight_log, strategy
        );
        prop_assert!(w.weight_log.iter().all(|p| *p <= 100));
    }

    /// The normalised step list always ends at 100%, never lowers a
    /// weight, and, with auto-promotion off, waits for a promotion before
    /// the candidate first takes all of production.
    #[test]
    fn every_strategy_normalises_to_growing_steps_ending_at_all_traffic(
        strategy in strategy(),
        auto_promote in any::<bool>(),
    ) {
        let strategy: Strategy = match strategy.as_str() {
            Some(name) => Strategy::from_name(name).expect("a known name"),
            None => serde_json::from_value(strategy).expect("a strategy"),
        };
        prop_assert!(strategy.validate().is_ok());
        let steps = strategy.steps(auto_promote);
        prop_assert_eq!(steps.last(), Some(&Step::SetWeight(100)));
        let weights: Vec<u8> = steps
            .iter()
            .filter_map(|s| match s {
                Step::SetWeight(w) => Some(*w),
                _ => None,
            })
            .collect();
        prop_assert!(weights.windows(2).all(|p| p[0] <= p[1]), "{:?}", steps);
        if !auto_promote {
            let full = steps.iter().position(|s| *s == Step::SetWeight(100)).unwrap_or(0);
            prop_assert!(
                steps[..full].contains(&Step::PauseUntilPromoted),
                "no promotion asked before 100% in {:?}", steps
            );
        }
    }

    /// A text cut for a status fits its bound in bytes and stays valid
    /// UTF-8 whatever it holds (a webhook's reply, an AWS error).
    #[test]
    fn a_cut_text_fits_its_bound_and_keeps_whole_characters(text in ".{0,300}", limit in 4usize..200) {
        let short = cut(&text, limit);
        prop_assert!(short.len() <= limit.max(text.len().min(limit)), "{} > {}", short.len(), limit);
        if text.len() <= limit {
            prop_assert_eq!(short, text);
        } else {
            prop_assert!(short.ends_with('…'));
            prop_assert!(text.starts_with(short.trim_end_matches('…')));
        }
    }
}
