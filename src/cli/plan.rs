//! `cutover plan`: what the controller would do for a service if it looked
//! now. It reads the record and the live service the way a reconcile pass
//! does and asks the same decision, then only prints: no command is run and
//! no status is written.

use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::Context;

use super::connect::{Aws, ServiceArg};
use super::setup::ConfigArgs;
use crate::cloud::observe::observe;
use crate::rollout::{Decision, Desired, Phase, Status, Wake, decide, reads};
use crate::time::{Timestamp, format_duration};

#[derive(clap::Args, Debug)]
pub struct PlanArgs {
    #[command(flatten)]
    pub service: ServiceArg,
    #[command(flatten)]
    pub config: ConfigArgs,
}

/// The decision in words.
pub fn describe(from: Phase, decision: &Decision, now: Timestamp) -> String {
    let to = decision.status.phase();
    let mut out = if from == to {
        format!("phase:    {to} (unchanged)\n")
    } else {
        format!("phase:    {from} → {to}\n")
    };
    if decision.commands.is_empty() {
        out.push_str("commands: none\n");
    } else {
        out.push_str("commands:\n");
        for (i, command) in decision.commands.iter().enumerate() {
            out.push_str(&format!("  {}. {command}\n", i + 1));
        }
    }
    out.push_str(&format!("message:  {}\n", decision.status.message));
    let next = match decision.wake {
        Wake::Poll => "at the next poll".to_string(),
        Wake::At(t) => format!("in {}", format_duration(t.since(now))),
        Wake::Idle => "when the record changes, or at the next resync".to_string(),
    };
    out.push_str(&format!("next look: {next}\n"));
    out
}

pub async fn plan(args: PlanArgs) -> anyhow::Result<ExitCode> {
    let key = &args.service.key;
    let aws = Aws::connect(&args.config).await?;
    let store = aws.store();
    let record = aws.record(&store, key).await?;
    // As a pass does: a missing or undecodable status is rebuilt from the
    // live service, starting from the default.
    let status: Status = record.status.clone().unwrap_or_default();
    let spec = record.spec();
    let desired = Desired::of(&spec);
    let (ecs, lb) = (aws.ecs(), aws.lb());
    let now = Timestamp::from_system(SystemTime::now());
    // A dry run calls no one's endpoints: gates read as unchecked.
    let codedeploy = aws.codedeploy();
    let service_deployments = aws.service_deployments();
    let observed = observe(
        &ecs,
        &lb,
        &crate::cloud::NoChecks,
        &codedeploy,
        &service_deployments,
        key,
        |service| reads(&desired, Some(service), &status, now),
    )
    .await
    .with_context(|| format!("observing {key}"))?;
    let decision = decide(&desired, &observed, &status, now);
    if let Ok(spec) = &spec {
        println!("{key}: revision {} ({})", spec.revision, spec.version);
    } else {
        println!("{key}: the record is invalid");
    }
    print!("{}", describe(status.phase(), &decision, now));
    // A pass that only stores its status and looks again at once (a new
    // rollout is stored before its candidate is created) is followed by
    // another straight away: show what that one would send.
    let mut last = decision;
    for _ in 0..2 {
        if !last.commands.is_empty() || last.wake != Wake::At(now) {
            break;
        }
        let next = decide(&desired, &observed, &last.status, now);
        println!("then, at once:");
        print!("{}", describe(last.status.phase(), &next, now));
        last = next;
    }
    println!("(a dry run: nothing was executed and no status was written)");
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollout::spec::Route;
    use crate::rollout::{Command, Weights};

    fn decision(phase: Phase, commands: Vec<Command>, wake: Wake) -> Decision {
        Decision {
            commands,
            status: Status {
                message: "shifting to 20%".into(),
                ..Status::default()
            }
            .with_phase(phase),
            wake,
            events: vec![],
        }
    }

    #[test]
    fn a_plan_lists_the_transition_the_commands_and_the_message() {
        let set = Command::SetWeights {
            route: Route::Listener(
                "arn:aws:elasticloadbalancing:us-east-1:1:listener/app/shop/1/2".into(),
            ),
            weights: Weights::pair("arn:tg/blue", 80, "arn:tg/green", 20),
        };
        let text = describe(
            Phase::Provisioning,
            &decision(Phase::Shifting, vec![set.clone()], Wake::Poll),
            Timestamp(0),
        );
        assert!(text.contains("Provisioning → Shifting"), "{text}");
        assert!(text.contains(&format!("  1. {set}")), "{text}");
        assert!(text.contains("message:  shifting to 20%"), "{text}");
        assert!(text.contains("at the next poll"), "{text}");
    }

    #[test]
    fn a_quiet_plan_says_nothing_changes() {
        let wake = Wake::At(Timestamp(90_000));
        let text = describe(
            Phase::Steady,
            &decision(Phase::Steady, vec![], wake),
            Timestamp(0),
        );
        assert!(text.contains("Steady (unchanged)"), "{text}");
        assert!(text.contains("commands: none"), "{text}");
        assert!(text.contains("in 1m 30s"), "{text}");
    }
}
