//! `cutover run`: the daemon.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::setup::{ConfigArgs, endpoint};
use crate::aws::accounts::Accounts;
use crate::aws::alb::AlbAdapter;
use crate::aws::calls::ApiCalls;
use crate::aws::cloudwatch::CloudWatchAlarms;
use crate::aws::codedeploy::CodeDeployAdapter;
use crate::aws::ecs::EcsAdapter;
use crate::aws::leases::DynamoLeases;
use crate::aws::sdk_config;
use crate::aws::service_deployments::ServiceDeploymentsAdapter;
use crate::aws::store::DynamoStore;
use crate::checks::{self, AlarmBatcher, Alarms, LiveChecks, Pacing};
use crate::cloud::DeploymentBatcher;
use crate::cloud::budget::{ApiBudgets, Budgeted};
use crate::cloud::scopes::Scopes;
use crate::cloud::service_deployments::ServiceDeploymentBatcher;
use crate::cloud::{
    Clock, DesiredStore, Ecs, Leases, LoadBalancer, ServiceDeployments, SystemClock,
};
use crate::controller::{Controller, ControllerConfig, LeaseConfig};
use crate::http::{self, ApiState, ApiToken};
use crate::metrics::Metrics;
use crate::notify::{Notifier, NotifyPolicy};
use crate::telemetry;

/// How long notifications still queued at shutdown may take to go out.
const NOTIFY_DRAIN: std::time::Duration = std::time::Duration::from_secs(10);

pub async fn run(args: ConfigArgs) -> anyhow::Result<ExitCode> {
    let config = args.load()?;
    telemetry::init(config.log_format);
    let token = ApiToken::from_env(|k| std::env::var(k).ok())?;
    // Bound before anything else starts, so a taken port fails fast.
    let listener = TcpListener::bind(&config.listen)
        .await
        .with_context(|| format!("cannot listen on {} (`listen`)", config.listen))?;
    // With port 0 the system picks one; the log says which.
    let listening = listener
        .local_addr()
        .map_or_else(|_| config.listen.clone(), |a| a.to_string());
    let sdk = sdk_config(&endpoint(&config)).await;
    let calls = ApiCalls::new();
    let metrics = Arc::new(Metrics::new().context("registering the metrics")?);
    metrics
        .export_api_calls(&calls)
        .context("registering the AWS request metrics")?;
    let leases = DynamoLeases::counted(&sdk, &config.lease_table, &calls);
    // Without its lease table a replica would take no shard and drive
    // nothing, however healthy it looked: fail at start instead.
    leases.read().await.with_context(|| {
        format!(
            "reading the lease table {} (`cutover init-table` creates it)",
            config.lease_table
        )
    })?;
    let replica = config.replica();
    // The accounts and regions the records name, learned as records are
    // read; one set of clients for each, made on first use.
    let scopes = Arc::new(Scopes::new(sdk.region().map(|r| r.to_string())));
    let accounts = Accounts::new(
        &sdk,
        &endpoint(&config),
        &config.accounts,
        Arc::clone(&scopes),
        &calls,
    );
    let store: Arc<dyn DesiredStore> = Arc::new(
        DynamoStore::counted(&sdk, &config.table, &calls)
            .with_leases(leases.clone())
            .with_scopes(Arc::clone(&scopes)),
    );
    let ecs: Arc<dyn Ecs> = Arc::new(EcsAdapter::scoped(Arc::clone(&accounts)));
    let lb: Arc<dyn LoadBalancer> = Arc::new(AlbAdapter::scoped(Arc::clone(&accounts)));
    // Passes that read deployments within 50ms of each other share calls.
    let codedeploy = DeploymentBatcher::new(
        Arc::new(CodeDeployAdapter::new(&sdk, &calls)),
        std::time::Duration::from_millis(50),
    );
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let budgets = ApiBudgets::new(&config.budgets, Arc::clone(&clock));
    budgets.with_scopes(Arc::clone(&scopes));
    metrics
        .export_budgets(&budgets)
        .context("registering the request budget metrics")?;
    let client = checks::client()?;
    let alarms = AlarmBatcher::new(
        Arc::new(Budgeted::new(
            Arc::new(CloudWatchAlarms::new(&sdk, &calls)) as Arc<dyn Alarms>,
            Arc::clone(&budgets),
        )),
        Arc::clone(&clock),
        Pacing::default(),
    );
    let checks = LiveChecks::new(client.clone(), Arc::clone(&clock)).with_alarms(alarms);
    // Records with driver = "ecs_native": ECS's own deployments, within the
    // ECS budgets the task set calls keep to.
    // Passes that read service deployments within 50ms of each other share
    // DescribeServiceDeployments calls, 20 deployments to a call.
    let service_deployments = ServiceDeploymentBatcher::new(
        Arc::new(Budgeted::new(
            Arc::new(ServiceDeploymentsAdapter::scoped(Arc::clone(&accounts)))
                as Arc<dyn ServiceDeployments>,
            Arc::clone(&budgets),
        )),
        std::time::Duration::from_millis(50),
    );
    let (notifier, courier) =
        Notifier::start(client, NotifyPolicy::default(), Some(Arc::clone(&metrics)));
    // Jitter only needs to differ between replicas, not to be secret.
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
        ^ u64::from(std::process::id());
    let controller = Controller::new(
        Arc::clone(&store),
        ecs,
        Arc::clone(&lb),
        Arc::clone(&clock),
        ControllerConfig {
            poll_interval: config.poll_interval,
            resync_interval: config.resync_interval,
            concurrency: config.concurrency,
            seed,
            ..ControllerConfig::default()
        },
    )
    .with_metrics(Arc::clone(&metrics))
    .with_limits(config.limits.limits())
    .with_budgets(&budgets)
    .with_leases(
        Arc::new(leases.clone()),
        LeaseConfig {
            replica: replica.clone(),
            shards: config.shards,
            ttl: config.lease_ttl,
            relay_poll: config.relay_poll,
        },
    )
    .with_relay(Arc::new(leases.clone()))
    .with_checks(Arc::new(checks))
    .with_codedeploy(Arc::new(codedeploy))
    .with_service_deployments(Arc::new(service_deployments))
    .with_notifier(notifier);
    let handle = controller.handle();
    metrics
        .export_queue(&handle)
        .context("registering the work queue metrics")?;
    let actions_enabled = token.is_some();
    let api = http::router(ApiState {
        store,
        lb,
        controller: handle,
        metrics,
        clock,
        token,
    });

    let shutdown = CancellationToken::new();
    tokio::spawn(stop_on_signal(shutdown.clone()));
    // The server outlives the controller's drain, so probes and metrics
    // keep answering while reconciles in flight finish.
    let stop_serving = CancellationToken::new();
    let server = tokio::spawn(http::serve(listener, api, stop_serving.clone()));
    tracing::info!(
        table = %config.table,
        region = %config.region,
        endpoint = config.endpoint_url.as_deref().unwrap_or("aws"),
        concurrency = config.concurrency,
        replica = %replica,
        shards = config.shards,
        listen = %listening,
        actions_enabled,
        "cutover is running"
    );
    if !actions_enabled {
        tracing::info!(
            "API actions are disabled: set CUTOVER_API_TOKEN or CUTOVER_API_TOKEN_FILE to enable them"
        );
    }
    controller.run(shutdown).await;
    // The controller, and with it the last notifier, is gone: what is
    // still queued gets a short while to go out.
    courier.finish(NOTIFY_DRAIN).await;
    stop_serving.cancel();
    match server.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!(error = %e, "the HTTP server failed"),
        Err(e) => tracing::error!(error = %e, "the HTTP server stopped abnormally"),
    }
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
