//! `cutover run`: the daemon.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use tokio_util::sync::CancellationToken;

use super::setup::{ConfigArgs, endpoint};
use crate::aws::alb::AlbAdapter;
use crate::aws::calls::ApiCalls;
use crate::aws::ecs::EcsAdapter;
use crate::aws::sdk_config;
use crate::aws::store::DynamoStore;
use crate::cloud::{Clock, DesiredStore, Ecs, LoadBalancer, SystemClock};
use crate::controller::{Controller, ControllerConfig};
use crate::telemetry;

pub async fn run(args: ConfigArgs) -> anyhow::Result<ExitCode> {
    let config = args.load()?;
    telemetry::init(config.log_format);
    let sdk = sdk_config(&endpoint(&config)).await;
    let calls = ApiCalls::new();
    let store: Arc<dyn DesiredStore> = Arc::new(DynamoStore::new(&sdk, &config.table));
    let ecs: Arc<dyn Ecs> = Arc::new(EcsAdapter::new(&sdk, &calls));
    let lb: Arc<dyn LoadBalancer> = Arc::new(AlbAdapter::new(&sdk));
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    // Jitter only needs to differ between replicas, not to be secret.
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
        ^ u64::from(std::process::id());
    let controller = Controller::new(
        store,
        ecs,
        lb,
        clock,
        ControllerConfig {
            poll_interval: config.poll_interval,
            resync_interval: config.resync_interval,
            concurrency: config.concurrency,
            seed,
            ..ControllerConfig::default()
        },
    );
    let shutdown = CancellationToken::new();
    tokio::spawn(stop_on_signal(shutdown.clone()));
    tracing::info!(
        table = %config.table,
        region = %config.region,
        endpoint = config.endpoint_url.as_deref().unwrap_or("aws"),
        concurrency = config.concurrency,
        "cutover is running"
    );
    controller.run(shutdown).await;
    tracing::info!("cutover stopped; every reconcile in flight finished");
    Ok(ExitCode::SUCCESS)
}

/// SIGTERM (ECS stopping the task) or SIGINT (a person) starts a graceful stop.
async fn stop_on_signal(shutdown: CancellationToken) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    biased;
                    _ = term.recv() => tracing::info!("SIGTERM: stopping after the reconciles in flight"),
                    _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: stopping after the reconciles in flight"),
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; only SIGINT stops cutover");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
    shutdown.cancel();
}
