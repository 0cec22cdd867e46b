//! Carrying out a decision's commands, in order, stopping at the first failure.

use crate::cloud::{
    Checks, CloudError, CodeDeploy, Ecs, ErrorKind, LoadBalancer, ServiceDeployments,
};
use crate::rollout::hook::{HookPoint, HookVerdict};
use crate::rollout::{Command, ServiceKey};

/// A command AWS refused; the commands after it were not attempted.
#[derive(Debug)]
pub struct CommandFailed {
    pub kind: &'static str,
    pub error: CloudError,
}

/// What commands act through.
pub struct Ports<'a> {
    pub ecs: &'a dyn Ecs,
    pub lb: &'a dyn LoadBalancer,
    pub checks: &'a dyn Checks,
    pub codedeploy: &'a dyn CodeDeploy,
    pub service_deployments: &'a dyn ServiceDeployments,
}

/// Runs the commands; returns the verdicts of hooks that answered at once.
pub async fn execute(
    ports: &Ports<'_>,
    key: &ServiceKey,
    commands: &[Command],
) -> Result<Vec<(HookPoint, HookVerdict)>, CommandFailed> {
    let mut answers = Vec::new();
    for command in commands {
        match execute_one(ports, key, command).await {
            Ok(answer) => answers.extend(answer),
            Err(error) => {
                return Err(CommandFailed {
                    kind: command.kind(),
                    error,
                });
            }
        }
        tracing::info!(service = %key, command = command.kind(), "{command}");
    }
    Ok(answers)
}

async fn execute_one(
    ports: &Ports<'_>,
    key: &ServiceKey,
    command: &Command,
) -> Result<Option<(HookPoint, HookVerdict)>, CloudError> {
    match command {
        Command::CreateTaskSet(request) => {
            ports.ecs.create_task_set(key, request).await.map(|_| None)
        }
        Command::SetWeights { route, weights } => {
            ports.lb.set_weights(route, weights).await.map(|_| None)
        }
        Command::SetStickiness { route, stickiness } => ports
            .lb
            .set_stickiness(route, *stickiness)
            .await
            .map(|_| None),
        Command::SetPrimary { task_set, .. } => {
            ports.ecs.set_primary(key, task_set).await.map(|_| None)
        }
        Command::DeleteTaskSet { task_set, .. } => {
            match ports.ecs.delete_task_set(key, task_set).await {
                // The goal is that the task set is gone; a retried delete
                // whose first response was lost finds exactly that.
                Err(e) if e.kind == ErrorKind::NotFound => Ok(None),
                other => other.map(|_| None),
            }
        }
        Command::CreateDeployment(request) => {
            let id = ports.codedeploy.create(key, request).await?;
            tracing::info!(service = %key, deployment = %id, "created CodeDeploy deployment {id}");
            Ok(None)
        }
        Command::ContinueDeployment {
            deployment_id,
            wait,
        } => ports
            .codedeploy
            .continue_deployment(deployment_id, *wait)
            .await
            .map(|_| None),
        Command::StopDeployment { deployment_id } => {
            ports.codedeploy.stop(deployment_id).await.map(|_| None)
        }
        Command::StartServiceDeployment(request) => {
            let arn = ports.service_deployments.start(key, request).await?;
            if let Some(arn) = arn {
                tracing::info!(service = %key, service_deployment = %arn, "started service deployment {arn}");
            }
            Ok(None)
        }
        Command::ContinueServiceDeployment {
            arn,
            hook_id,
            action,
        } => ports
            .service_deployments
            .answer(arn, hook_id, *action)
            .await
            .map(|_| None),
        Command::StopServiceDeployment { arn } => {
            ports.service_deployments.stop(arn).await.map(|_| None)
        }
        Command::InvokeHook { url, payload } => {
            let answer = ports.checks.call_hook(url, payload).await?;
            Ok(answer.map(|(verdict, detail)| {
                (
                    payload.hook,
                    HookVerdict {
                        rollout: payload.rollout.clone(),
                        verdict,
                        detail,
                    },
                )
            }))
        }
    }
}
