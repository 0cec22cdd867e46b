//! How traffic moves from the active task set to the candidate: a strategy is
//! declared in the record and normalised into an explicit list of steps.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::time::format_duration;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum Strategy {
    AllAtOnce,
    /// `percent` for `interval`, then everything.
    Canary {
        percent: u8,
        #[serde(with = "humantime_serde_compat")]
        interval: Duration,
    },
    /// `percent` more every `interval` until everything.
    Linear {
        percent: u8,
        #[serde(with = "humantime_serde_compat")]
        interval: Duration,
    },
    Steps {
        steps: Vec<Step>,
    },
}

/// One step of a rollout.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// Send this percentage of production traffic to the candidate.
    SetWeight(u8),
    /// Hold the current weights for this long.
    Pause(#[serde(with = "humantime_serde_compat")] Duration),
    /// Hold the current weights until someone promotes the rollout.
    PauseUntilPromoted,
}

/// CodeDeploy's predefined ECS deployment configurations, accepted as-is so a
/// team can move its existing configuration name over unchanged.
pub const CODEDEPLOY_NAMES: [&str; 5] = [
    "CodeDeployDefault.ECSAllAtOnce",
    "CodeDeployDefault.ECSCanary10Percent5Minutes",
    "CodeDeployDefault.ECSCanary10Percent15Minutes",
    "CodeDeployDefault.ECSLinear10PercentEvery1Minutes",
    "CodeDeployDefault.ECSLinear10PercentEvery3Minutes",
];

impl Strategy {
    pub fn from_name(name: &str) -> Option<Strategy> {
        let min = |m: u64| Duration::from_secs(60 * m);
        Some(match name {
            "all_at_once" | "CodeDeployDefault.ECSAllAtOnce" => Strategy::AllAtOnce,
            "CodeDeployDefault.ECSCanary10Percent5Minutes" => Strategy::Canary {
                percent: 10,
                interval: min(5),
            },
            "CodeDeployDefault.ECSCanary10Percent15Minutes" => Strategy::Canary {
                percent: 10,
                interval: min(15),
            },
            "CodeDeployDefault.ECSLinear10PercentEvery1Minutes" => Strategy::Linear {
                percent: 10,
                interval: min(1),
            },
            "CodeDeployDefault.ECSLinear10PercentEvery3Minutes" => Strategy::Linear {
                percent: 10,
                interval: min(3),
            },
            _ => return None,
        })
    }

    /// Checks the parameters; the error names the field relative to `strategy`.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let pct = |p: u8, field: &str| {
            if (1..=99).contains(&p) {
                Ok(())
            } else {
                Err((
                    field.to_string(),
                    format!("{p} is out of range: use a percentage from 1 to 99"),
                ))
            }
        };
        match self {
            Strategy::AllAtOnce => Ok(()),
            Strategy::Canary { percent, .. } | Strategy::Linear { percent, .. } => {
                pct(*percent, "percent")
            }
            Strategy::Steps { steps } => {
                if steps.is_empty() {
                    return Err((
                        "steps".into(),
                        "is empty: give at least one step, e.g. {set_weight = 100}".into(),
                    ));
                }
                let mut last = 0u8;
                for (i, step) in steps.iter().enumerate() {
                    if let Step::SetWeight(w) = step {
                        if *w > 100 {
                            return Err((
                                format!("steps[{i}].set_weight"),
                                format!("{w} is out of range: use a percentage from 0 to 100"),
                            ));
                        }
                        if *w < last {
                            return Err((
                                format!("steps[{i}].set_weight"),
                                format!(
                                    "{w} is lower than the step before ({last}): weights only grow; \
                                     to go back, change the record to the old version"
                                ),
                            ));
                        }
                        last = *w;
                    }
                }
                Ok(())
            }
        }
    }

    /// The explicit step list, always ending with the candidate at 100%.
    /// Without auto-promotion the rollout waits for a promotion before the
    /// first shift to 100%.
    pub fn steps(&self, auto_promote: bool) -> Vec<Step> {
        let mut steps = match self {
            Strategy::AllAtOnce => vec![],
            Strategy::Canary { percent, interval } => {
                vec![Step::SetWeight(*percent), Step::Pause(*interval)]
            }
            Strategy::Linear { percent, interval } => {
                let mut v = Vec::new();
                let mut w = *percent as u32;
                while w < 100 {
                    v.push(Step::SetWeight(w as u8));
                    v.push(Step::Pause(*interval));
                    w += *percent as u32;
                }
                v
            }
            Strategy::Steps { steps } => steps.clone(),
        };
        if steps.last() == Some(&Step::SetWeight(100)) {
            steps.pop();
        }
        if !auto_promote {
            // The promotion is asked for before the candidate first takes
            // all of production, wherever the list puts that: a list that
            // holds at 100% before it ends (`[{set_weight = 100},
            // {pause = "5m"}]`) must not shift first and ask after.
            let full = steps
                .iter()
                .position(|s| *s == Step::SetWeight(100))
                .unwrap_or(steps.len());
            if full == 0 || steps[full - 1] != Step::PauseUntilPromoted {
                steps.insert(full, Step::PauseUntilPromoted);
            }
        }
        steps.push(Step::SetWeight(100));
        steps
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Strategy::AllAtOnce => write!(f, "all-at-once"),
            Strategy::Canary { percent, interval } => {
                write!(f, "canary {percent}% for {}", format_duration(*interval))
            }
            Strategy::Linear { percent, interval } => {
                write!(f, "linear {percent}% every {}", format_duration(*interval))
            }
            Strategy::Steps { steps } => write!(f, "{} explicit steps", steps.len()),
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::SetWeight(w) => write!(f, "set weight {w}%"),
            Step::Pause(d) => write!(f, "pause {}", format_duration(*d)),
            Step::PauseUntilPromoted => write!(f, "pause until promoted"),
        }
    }
}

/// Durations in records are written as text (`"5m"`, `"90s"`) or as a whole
/// number of seconds.
pub mod humantime_serde_compat {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    use crate::time::format_duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(*d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Secs(u64),
            Text(String),
        }
        match Raw::deserialize(d).map_err(|_| {
            serde::de::Error::custom("expected a duration such as \"90s\", \"5m\" or \"1h\"")
        })? {
            Raw::Secs(s) => Ok(Duration::from_secs(s)),
            Raw::Text(t) => humantime::parse_duration(t.trim()).map_err(|e| {
                serde::de::Error::custom(format!(
                    "{} is not a duration ({}): write it as \"90s\", \"5m\" or \"1h\"",
                    crate::rollout::quote::quote(&t),
                    crate::rollout::quote::name(&e.to_string())
                ))
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(n: u64) -> Duration {
        Duration::from_secs(60 * n)
    }

    #[test]
    fn all_at_once_is_one_step_to_full_weight() {
        assert_eq!(Strategy::AllAtOnce.steps(true), vec![Step::SetWeight(100)]);
    }

    #[test]
    fn canary_holds_its_percentage_then_goes_to_full_weight() {
        let s = Strategy::Canary {
            percent: 10,
            interval: m(5),
        };
        assert_eq!(
            s.steps(true),
            vec![Step::SetWeight(10), Step::Pause(m(5)), Step::SetWeight(100)]
        );
    }

    #[test]
    fn linear_adds_its_percentage_every_interval() {
        let s = Strategy::Linear {
            percent: 30,
            interval: m(1),
        };
        assert_eq!(
            s.steps(true),
            vec![
                Step::SetWeight(30),
                Step::Pause(m(1)),
                Step::SetWeight(60),
                Step::Pause(m(1)),
                Step::SetWeight(90),
                Step::Pause(m(1)),
                Step::SetWeight(100)
            ]
        );
    }

    #[test]
    fn without_auto_promote_the_final_shift_waits_for_promotion() {
        let steps = Strategy::AllAtOnce.steps(false);
        assert_eq!(steps, vec![Step::PauseUntilPromoted, Step::SetWeight(100)]);
    }

    /// Found by the property test: the wait was appended after a list that
    /// already holds at 100%, so the candidate took all of production first.
    #[test]
    fn without_auto_promote_a_list_that_holds_at_full_weight_waits_before_it() {
        let s = Strategy::Steps {
            steps: vec![Step::SetWeight(100), Step::Pause(m(5))],
        };
        assert_eq!(
            s.steps(false),
            vec![
                Step::PauseUntilPromoted,
                Step::SetWeight(100),
                Step::Pause(m(5)),
                Step::SetWeight(100)
            ]
        );
    }

    #[test]
    fn explicit_steps_always_end_at_full_weight_once() {
        let s = Strategy::Steps {
            steps: vec![Step::SetWeight(20), Step::SetWeight(100)],
        };
        assert_eq!(
            s.steps(true),
            vec![Step::SetWeight(20), Step::SetWeight(100)]
        );
    }

    #[test]
    fn codedeploy_names_map_to_their_meaning() {
        for name in CODEDEPLOY_NAMES {
            assert!(Strategy::from_name(name).is_some(), "{name}");
        }
        assert_eq!(
            Strategy::from_name("CodeDeployDefault.ECSLinear10PercentEvery3Minutes"),
            Some(Strategy::Linear {
                percent: 10,
                interval: m(3)
            })
        );
        assert_eq!(Strategy::from_name("ECSCanary"), None);
    }

    #[test]
    fn decreasing_step_weights_are_rejected_with_the_field() {
        let s = Strategy::Steps {
            steps: vec![Step::SetWeight(50), Step::SetWeight(20)],
        };
        let (field, msg) = s.validate().unwrap_err();
        assert_eq!(field, "steps[1].set_weight");
        assert!(msg.contains("only grow"), "{msg}");
    }
}
