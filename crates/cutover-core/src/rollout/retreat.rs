//! A candidate that serves production with no healthy target gives its share
//! back until it has one again.
//!
//! A target group with no healthy target fails the requests sent to it:
//! with no target registered (a task replaced, its successor not yet in the
//! group) ELB answers 503
//! (https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-troubleshooting.html),
//! and with only unhealthy ones it fails open and sends requests to targets
//! that fail their checks
//! (https://docs.aws.amazon.com/elasticloadbalancing/latest/application/target-group-health-checks.html).
//! A single-task candidate is there every time ECS replaces its task (host
//! retirement, a crash), for the HealthyThresholdCount × interval its
//! successor takes to pass its checks: minutes, with a target group's
//! defaults. Whether the version is at fault is the health gate's question,
//! answered after its grace; the clients cannot wait that long, so their
//! share goes back to the task set that served before, at once, and the
//! step's weight is written again when the candidate is back at its bar.
//! That is not a failure of the version: a good one replaced now and then
//! still finishes, a bad one still fails its gate and rolls back.

use super::driver::Flow;
use super::machine::Machine;
use super::observed::Weights;
use super::status::Rollout;
use super::strategy::Step;

impl Machine<'_, '_> {
    /// Sends the candidate's production share back to the previous task set
    /// while the candidate has no healthy target and that one has. Called
    /// only while the health gate finds the candidate short of its bar, and
    /// the rollout waits meanwhile.
    pub(crate) fn retreat(&mut self, r: &Rollout) {
        let Some(from) = r.from.as_ref() else {
            // A first release has nothing to give the share back to.
            return;
        };
        if self.healthy_targets(&r.target_group) > 0
            || self.healthy_targets(&from.target_group) == 0
        {
            // Either it can serve, or neither side can and moving traffic
            // would only trade one failing group for another.
            return;
        }
        let share = self
            .observed
            .production
            .as_ref()
            .map_or(0, |w| w.percent(&r.target_group));
        let written = self
            .d
            .status
            .production_written
            .as_ref()
            .map_or(0, |w| w.percent(&r.target_group));
        if share == 0 && written == 0 {
            // Nothing on its way to the candidate. Clients that stickiness
            // held there follow once it shows off.
            if self.d.status.stickiness_off.is_some() {
                self.sticky_clients_held(&r.target_group);
            }
            return;
        }
        let want = self.all_back_to(&from.target_group, &r.target_group);
        let gate_said = self.d.status.message.clone();
        self.set_production(want);
        self.sticky_clients_held(&r.target_group);
        self.d.say(format!(
            "{gate_said}; with no healthy target, its {}% of production goes back to the \
             previous task set until it has one (the step resumes then)",
            share.max(written)
        ));
    }

    /// After a retreat, the candidate back at its bar gets the share of the
    /// step it had reached. A step that only holds (a pause, a promotion)
    /// would otherwise spend its time, and its gates' readings, at 0%.
    /// Only a share cutover itself took back is returned: the status
    /// remembers writing 0% for the candidate while a step had given it
    /// more.
    pub(crate) fn resume_share(&mut self, r: &Rollout, steps: &[Step]) -> Option<Flow> {
        let reached = steps
            .get(..r.step as usize)?
            .iter()
            .rev()
            .find_map(|s| match s {
                Step::SetWeight(w) => Some(u32::from(*w)),
                _ => None,
            })?;
        let written = self.d.status.production_written.as_ref()?;
        if reached == 0 || written.percent(&r.target_group) != 0 {
            return None;
        }
        let want = self.production_weights(r, reached);
        self.set_production(want);
        Some(self.wait_for_progress(
            r,
            format!("the candidate is back at its bar: returning its {reached}% of production"),
        ))
    }

    /// A target group that `want` gives more production weight than `seen`
    /// shows, while it has no healthy target (or its health was not read):
    /// such a change is held. A step can give the previous task set weight
    /// back, when a person moved the candidate past it by hand and the
    /// rollout resumed, and that side may be between tasks just then.
    pub(crate) fn unserved_gain(&self, seen: &Weights, want: &Weights) -> Option<String> {
        want.0
            .iter()
            .filter(|(tg, w)| **w > seen.get(tg))
            .find(|(tg, _)| self.healthy_targets(tg) == 0)
            .map(|(tg, _)| tg.clone())
    }

    /// The healthy targets `tg` had when observed; 0 when its health was
    /// not read, as nothing can be sent there on the strength of it.
    pub(crate) fn healthy_targets(&self, tg: &str) -> u32 {
        self.observed.targets.get(tg).map_or(0, |t| t.healthy)
    }
}
