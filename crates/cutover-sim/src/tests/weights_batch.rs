//! The load balancer reads of many passes share calls: the batcher in
//! front of the simulated cloud.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::cloud::ScaledClock;
use crate::cloud::budget::{Priority, with_priority};
use crate::cloud::{Clock, LoadBalancer};
use crate::controller::weights_batch::{WINDOW, WeightsBatcher};
use crate::rollout::Route;
use crate::rollout::ServiceKey;
use crate::{DEFAULT_EPOCH, Faults, ServiceSetup, SimCloud};

fn setup(n: usize) -> (Arc<dyn Clock>, SimCloud, Vec<Route>) {
    let clock: Arc<dyn Clock> = Arc::new(ScaledClock::new(DEFAULT_EPOCH, 1.0));
    let sim = SimCloud::builder(3)
        .clock(Arc::clone(&clock))
        .faults(Faults::none())
        .build();
    let routes = (0..n)
        .map(|i| {
            let arns = sim
                .add_service(ServiceSetup::new(ServiceKey::new("prod", format!("s{i}"))))
                .unwrap();
            arns.production.clone()
        })
        .collect();
    (clock, sim, routes)
}

#[tokio::test(start_paused = true)]
async fn reads_at_about_the_same_time_share_calls_and_get_their_own_answers() {
    let (clock, sim, routes) = setup(25);
    let batcher = Arc::new(WeightsBatcher::new(
        Arc::new(sim.clone()),
        clock,
        Box::new(|| 25),
    ));
    let mut reads = tokio::task::JoinSet::new();
    for (i, route) in routes.iter().enumerate() {
        let (batcher, route) = (Arc::clone(&batcher), route.clone());
        reads.spawn(async move { (i, batcher.weights(&route).await) });
    }
    let mut answered = 0;
    while let Some(done) = reads.join_next().await {
        let (i, answer) = done.unwrap();
        assert_eq!(answer.unwrap(), sim.weights(&routes[i]).await.unwrap());
        answered += 1;
    }
    assert_eq!(answered, 25);
    // 25 reads, 20 routes a call; the 25 checks above made one each.
    assert_eq!(sim.call_count("elbv2:DescribeListeners"), 2 + 25);
}

#[tokio::test(start_paused = true)]
async fn a_change_or_a_lone_pass_does_not_wait_for_company() {
    let (clock, sim, routes) = setup(1);
    let in_flight = Arc::new(AtomicUsize::new(2));
    let batcher = WeightsBatcher::new(Arc::new(sim.clone()), Arc::clone(&clock), {
        let in_flight = Arc::clone(&in_flight);
        Box::new(move || in_flight.load(Ordering::Relaxed))
    });
    let started = clock.now();
    let read = with_priority(Priority::Change, batcher.weights(&routes[0])).await;
    assert!(read.is_ok());
    assert_eq!(clock.now(), started, "a change's read waits for no window");
    // With another pass in flight, a rollout's read waits for company...
    let read = with_priority(Priority::Rollout, batcher.weights(&routes[0])).await;
    assert!(read.is_ok());
    let waited = clock.now().since(started);
    assert!(waited >= WINDOW && waited < WINDOW * 2, "{waited:?}");
    // ...but alone it has nobody to wait for.
    in_flight.store(1, Ordering::Relaxed);
    let before = clock.now();
    let read = with_priority(Priority::Rollout, batcher.weights(&routes[0])).await;
    assert!(read.is_ok());
    assert_eq!(clock.now(), before);
}
