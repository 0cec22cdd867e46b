//! Sticky clients while a task set leaves production.
//!
//! With group-level stickiness on a forward action, ELB keeps a client on
//! the target group it was first sent to for the configured duration (up to
//! 7 days), whatever the weights say after. A target group at weight 0 still
//! gets its sticky clients, so removing its task set, or rolling back off a
//! failing candidate, would leave them on targets that are gone or failing.
//!
//! cutover turns stickiness off on the production route before it removes a
//! task set that route weighed, waits until the load balancer shows it off,
//! removes the task set, then turns stickiness back on with the duration it
//! had, and says so in the status (`stickiness_off`) meanwhile. The other
//! way, keeping the old task set until the duration has passed, would hold
//! a release for up to 7 days, and cannot help a rollback at all: the
//! clients stuck on a failing candidate must move now, not when their
//! duration ends. The price is that for the seconds the switch takes, a
//! client may be sent to the other target group than before; that client
//! was going to move to the version that stays anyway.

use super::command::{Command, Wake};
use super::machine::Machine;
use super::observed::{Stickiness, short_arn};
use super::status::StickinessOff;

impl Machine<'_, '_> {
    /// Whether sticky clients of the production route may still be held on
    /// `leaving`, a target group about to lose its task set. If so,
    /// stickiness is turned off (and remembered, to be put back) and the
    /// caller waits until the load balancer shows it off.
    pub(crate) fn sticky_clients_held(&mut self, leaving: &str) -> bool {
        let route = self.spec.traffic.production.clone();
        let Some(seen) = self.observed.production_stickiness else {
            // Not read in this pass: ask for it rather than guess.
            self.d.wake(Wake::Poll);
            return true;
        };
        if !seen.enabled {
            return false;
        }
        if self.d.status.stickiness_off.is_none() {
            self.d.status.stickiness_off = Some(StickinessOff {
                route: route.clone(),
                duration_seconds: seen.duration_seconds,
                since: self.d.now,
            });
        }
        self.d.commands.push(Command::SetStickiness {
            route: route.clone(),
            stickiness: seen.turned(false),
        });
        self.d.say(format!(
            "turning stickiness off on {} so that clients held on {} move before its task set \
             is removed; it is turned back on ({}s) after",
            short_arn(route.arn()),
            short_arn(leaving),
            seen.duration_seconds
        ));
        self.d.wake(Wake::Poll);
        true
    }

    /// Puts back the stickiness cutover turned off. `true` while the caller
    /// should wait for the load balancer to show it on again.
    pub(crate) fn restoring_stickiness(&mut self) -> bool {
        let Some(off) = self.d.status.stickiness_off.clone() else {
            return false;
        };
        let wanted = Stickiness {
            enabled: true,
            duration_seconds: off.duration_seconds,
        };
        if off.route != self.spec.traffic.production {
            // The record names another route now: put this one back and
            // let go of it, as nothing here reads it any more.
            self.d.commands.push(Command::SetStickiness {
                route: off.route,
                stickiness: wanted,
            });
            self.d.status.stickiness_off = None;
            return false;
        }
        match self.observed.production_stickiness {
            Some(seen) if seen.enabled => {
                self.d.status.stickiness_off = None;
                false
            }
            seen => {
                if seen.is_some() {
                    self.d.commands.push(Command::SetStickiness {
                        route: off.route.clone(),
                        stickiness: wanted,
                    });
                }
                self.d.say(format!(
                    "turning stickiness back on on {} ({}s)",
                    short_arn(off.route.arn()),
                    off.duration_seconds
                ));
                self.d.wake(Wake::Poll);
                true
            }
        }
    }
}
