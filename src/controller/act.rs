//! Carrying out a decision's commands, in order, stopping at the first failure.

use crate::cloud::{CloudError, Ecs, ErrorKind, LoadBalancer};
use crate::rollout::{Command, ServiceKey};

/// A command AWS refused; the commands after it were not attempted.
#[derive(Debug)]
pub struct CommandFailed {
    pub kind: &'static str,
    pub error: CloudError,
}

pub async fn execute(
    ecs: &dyn Ecs,
    lb: &dyn LoadBalancer,
    key: &ServiceKey,
    commands: &[Command],
) -> Result<(), CommandFailed> {
    for command in commands {
        if let Err(error) = execute_one(ecs, lb, key, command).await {
            return Err(CommandFailed {
                kind: command.kind(),
                error,
            });
        }
        tracing::info!(service = %key, command = command.kind(), "{command}");
    }
    Ok(())
}

async fn execute_one(
    ecs: &dyn Ecs,
    lb: &dyn LoadBalancer,
    key: &ServiceKey,
    command: &Command,
) -> Result<(), CloudError> {
    match command {
        Command::CreateTaskSet(request) => ecs.create_task_set(key, request).await.map(drop),
        Command::SetWeights { route, weights } => lb.set_weights(route, weights).await,
        Command::SetPrimary { task_set } => ecs.set_primary(key, task_set).await,
        Command::DeleteTaskSet { task_set } => {
            match ecs.delete_task_set(key, task_set).await {
                // The goal is that the task set is gone; a retried delete
                // whose first response was lost finds exactly that.
                Err(e) if e.kind == ErrorKind::NotFound => Ok(()),
                other => other,
            }
        }
    }
}
