//! Several controllers sharing the services through shard leases, in one
//! test process: each is a replica with its own name and pausable ports.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use cutover::cloud::{Clock, DesiredStore, Ecs, Leases, LoadBalancer, Relay};
use cutover::controller::{Controller, ControllerConfig, ControllerHandle, LeaseConfig};
use cutover::metrics::Metrics;

use super::pausable::{Gate, Pausable};

pub struct Replica {
    pub name: String,
    pub gate: Arc<Gate>,
    pub handle: ControllerHandle,
    /// Not every test binary that shares this module reads it.
    #[allow(dead_code)]
    pub metrics: Arc<Metrics>,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl Replica {
    pub fn start<S, E, L, T>(
        name: &str,
        ports: Pausable<S, E, L, T>,
        clock: Arc<dyn Clock>,
        lease: LeaseConfig,
        config: ControllerConfig,
    ) -> Replica
    where
        S: DesiredStore + Clone + 'static,
        E: Ecs + Clone + 'static,
        L: LoadBalancer + Clone + 'static,
        T: Leases + Relay + Clone + 'static,
    {
        let gate = Arc::clone(&ports.gate);
        let metrics = Arc::new(Metrics::new().expect("metrics"));
        let controller = Controller::new(
            Arc::new(ports.clone()) as Arc<dyn DesiredStore>,
            Arc::new(ports.clone()) as Arc<dyn Ecs>,
            Arc::new(ports.clone()) as Arc<dyn LoadBalancer>,
            clock,
            config,
        )
        .with_leases(Arc::new(ports.clone()) as Arc<dyn Leases>, lease)
        .with_relay(Arc::new(ports) as Arc<dyn Relay>)
        .with_metrics(Arc::clone(&metrics));
        let handle = controller.handle();
        metrics
            .export_queue(&handle)
            .expect("the queue and change feed metrics");
        let stop = CancellationToken::new();
        let task = tokio::spawn(controller.run(stop.clone()));
        Replica {
            name: name.to_string(),
            gate,
            handle,
            metrics,
            stop,
            task,
        }
    }

    pub fn shards(&self) -> BTreeSet<u32> {
        self.handle
            .shards()
            .unwrap_or_default()
            .into_iter()
            .collect()
    }

    /// As if the process died: no lease is released, no pass finishes.
    pub fn kill(self) {
        self.task.abort();
    }

    /// A graceful stop: passes in flight finish, leases are handed back.
    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

pub fn lease(name: &str, shards: u32, ttl: Duration) -> LeaseConfig {
    LeaseConfig {
        replica: name.to_string(),
        shards,
        ttl,
        relay_poll: Duration::from_secs(1),
    }
}

/// Every shard held by exactly one replica, and none above its fair share.
pub fn spread(replicas: &[&Replica], shards: u32) -> Result<(), String> {
    let fair = shards.div_ceil(replicas.len() as u32) as usize;
    let mut all = BTreeSet::new();
    for r in replicas {
        let mine = r.shards();
        if mine.is_empty() || mine.len() > fair {
            return Err(format!("{} holds {mine:?} (fair share {fair})", r.name));
        }
        for s in mine {
            if !all.insert(s) {
                return Err(format!("shard {s} is held twice"));
            }
        }
    }
    if all.len() != shards as usize {
        return Err(format!("only {all:?} of {shards} shards are held"));
    }
    Ok(())
}
