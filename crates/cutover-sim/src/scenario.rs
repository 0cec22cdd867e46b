//! Scenario setup: services that already run one healthy version behind a
//! production listener, and records that point cutover at them.

use serde_json::{Value, json};
use std::collections::BTreeMap;

use super::SimCloud;
use super::alb::{Action, Condition, RouteConfig, RouteKind, Stickiness};
use super::arn;
use super::ecs::{Service, SimTaskSet};
use super::native::NativeService;
use super::registry::{self, Containers};
use super::targets::TargetGroup;
use super::world::World;
use crate::cloud::{CloudError, ErrorKind};
use crate::rollout::spec::{Network, Placement, Route};
use crate::rollout::{Scope, ServiceKey, TaskSetStatus};

const OP: &str = "sim:AddService";
/// The longest group-level stickiness ELB accepts: 7 days
/// (https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_TargetGroupStickinessConfig.html).
pub const MAX_STICKINESS_SECONDS: u32 = 604_800;

/// Turns group-level stickiness on for the route's forward action.
fn sticky(config: &mut RouteConfig, seconds: Option<u32>) {
    let Some(duration_seconds) = seconds else {
        return;
    };
    for a in &mut config.actions {
        if let Action::Forward(f) = a {
            f.stickiness = Some(Stickiness {
                enabled: true,
                duration_seconds,
            });
        }
    }
}

#[derive(Clone, Debug)]
pub struct ServiceSetup {
    pub key: ServiceKey,
    pub desired_count: u32,
    /// `family:revision` the initial task set runs.
    pub initial_task_definition: String,
    pub container: String,
    pub container_port: u16,
    /// The container's image in the initial task definition, if it is new.
    pub image: String,
    pub test_listener: bool,
    /// Production traffic goes through a listener rule (with a host header
    /// condition) instead of the listener's default action.
    pub production_rule: bool,
    /// `EXTERNAL` for services cutover drives with task sets; `ECS` for
    /// services ECS deploys itself (see [`ServiceSetup::native`]).
    pub deployment_controller: String,
    /// The initial task set's external id; `None` as if made by hand.
    pub initial_external_id: Option<String>,
    /// `false` leaves the service without task sets, for a first release;
    /// production then forwards to an empty blue target group.
    pub initial_task_set: bool,
    /// Group-level stickiness on the production forward action, in seconds
    /// (1 to 604800, as ELB accepts): a population of clients that stay on
    /// the target group they were first sent to. `None`: no sticky clients.
    pub production_stickiness: Option<u32>,
}

impl ServiceSetup {
    /// Two tasks of `<service>:1` with container `app` on port 8080, a
    /// production listener and a test listener.
    pub fn new(key: ServiceKey) -> ServiceSetup {
        let family = key.service.clone();
        ServiceSetup {
            desired_count: 2,
            initial_task_definition: format!("{family}:1"),
            container: "app".into(),
            container_port: 8080,
            image: format!("registry.example/{family}:1"),
            test_listener: true,
            production_rule: false,
            deployment_controller: "EXTERNAL".into(),
            initial_external_id: None,
            initial_task_set: true,
            production_stickiness: None,
            key,
        }
    }

    /// A service on the ECS deployment controller that ECS deploys itself
    /// (`driver = "ecs_native"`): its first revision serves from the blue
    /// target group, and ECS weighs the production and test routes between
    /// the two target groups in each service deployment (the service's
    /// `advancedConfiguration`:
    /// https://docs.aws.amazon.com/AmazonECS/latest/developerguide/blue-green-deployment-implementation.html).
    pub fn native(key: ServiceKey) -> ServiceSetup {
        ServiceSetup {
            deployment_controller: NATIVE_CONTROLLER.into(),
            ..ServiceSetup::new(key)
        }
    }
}

/// The deployment controller of services ECS deploys itself.
pub const NATIVE_CONTROLLER: &str = "ECS";

/// What a record for the service needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceArns {
    pub key: ServiceKey,
    pub load_balancer: String,
    pub production: Route,
    pub test: Option<Route>,
    /// Blue (serving at setup) first, then green.
    pub target_groups: [String; 2],
    pub initial_task_set: Option<String>,
    pub container: String,
    pub container_port: u16,
}

impl ServiceArns {
    pub fn blue(&self) -> &str {
        &self.target_groups[0]
    }

    pub fn green(&self) -> &str {
        &self.target_groups[1]
    }

    /// A valid `driver = "ecs_native"` record body deploying
    /// `task_definition` with `strategy`: ECS owns the routes, target
    /// groups and placement, so the record names none of them.
    pub fn native_record(&self, task_definition: &str, strategy: Value) -> Value {
        json!({
            "service": self.key.to_string(),
            "driver": "ecs_native",
            "task_definition": task_definition,
            "container": self.container,
            "strategy": strategy,
            "bake": "1m",
            "progress_deadline": "10m",
            "paused": false,
            "auto_promote": true,
            "labels": {"team": "sim"},
        })
    }

    /// A valid record body deploying `task_definition` with `strategy`
    /// (a name such as `"all_at_once"` or a map); change fields as needed.
    pub fn record(&self, task_definition: &str, strategy: Value) -> Value {
        let mut body = json!({
            "service": self.key.to_string(),
            "task_definition": task_definition,
            "container": self.container,
            "container_port": self.container_port,
            "target_groups": self.target_groups,
            "strategy": strategy,
            "bake": "1m",
            "progress_deadline": "10m",
            "paused": false,
            "auto_promote": true,
            "network": {
                "subnets": ["subnet-0a1b2c3d", "subnet-4e5f6a7b"],
                "security_groups": ["sg-0123456789abcdef0"],
                "assign_public_ip": false
            },
            "launch_type": "FARGATE",
            "labels": {"team": "sim"},
        });
        let (field, arn) = match &self.production {
            Route::Listener(a) => ("production_listener", a),
            Route::Rule(a) => ("production_rule", a),
        };
        body[field] = json!(arn);
        match &self.test {
            Some(Route::Listener(a)) => body["test_listener"] = json!(a),
            Some(Route::Rule(a)) => body["test_rule"] = json!(a),
            None => {}
        }
        body
    }
}

impl SimCloud {
    /// Another production listener on the load balancer `beside` is on,
    /// forwarding everything to `blue`: where a person moves a service's
    /// production traffic to.
    pub fn add_production_listener(&self, beside: &Route, blue: &str, green: &str) -> Route {
        let mut w = self.world();
        // listener/app/<name>/<id>/<listener>[/<rule>]: the load balancer is
        // the first four parts.
        let base = beside.arn().replace(":listener-rule/", ":listener/");
        let lb: Vec<&str> = base.split('/').take(4).collect();
        let arn = format!("{}/{}", lb.join("/"), w.hex_id(16));
        w.lb.add_route(
            &arn,
            RouteKind::Listener,
            true,
            route(vec![Action::forward(&[(blue, 100), (green, 0)])]),
        );
        Route::Listener(arn)
    }

    /// Creates the service with one PRIMARY task set already running and
    /// healthy in the blue target group, and the listeners in front of it.
    pub fn add_service(&self, setup: ServiceSetup) -> Result<ServiceArns, CloudError> {
        self.world().add_service(setup)
    }
}

impl World {
    fn add_service(&mut self, setup: ServiceSetup) -> Result<ServiceArns, CloudError> {
        let key = setup.key.clone();
        if self.services.by_key.contains_key(&key) {
            return Err(CloudError::new(
                ErrorKind::Invalid,
                OP,
                format!("service {key} exists"),
            ));
        }
        let (family, rev) = registry::parse(&setup.initial_task_definition).ok_or_else(|| {
            CloudError::new(
                ErrorKind::Invalid,
                OP,
                format!("{:?} is not family:revision", setup.initial_task_definition),
            )
        })?;
        self.registry.ensure(
            &family,
            rev,
            Containers::from([(setup.container.clone(), setup.image.clone())]),
        );
        let task_definition = format!("{family}:{rev}");
        if let Some(d) = setup.production_stickiness
            && !(1..=MAX_STICKINESS_SECONDS).contains(&d)
        {
            return Err(CloudError::new(
                ErrorKind::Invalid,
                OP,
                format!(
                    "stickiness duration {d}s: ELB accepts 1 to {MAX_STICKINESS_SECONDS} seconds"
                ),
            ));
        }

        let lb_name = arn::elb_name(&key.service, "");
        let lb_id = self.hex_id(16);
        // Everything in the key's account and region, as a record there
        // must name it.
        let scope = &key.scope;
        let blue = self.add_target_group(scope, &arn::elb_name(&key.service, "-blue"));
        let green = self.add_target_group(scope, &arn::elb_name(&key.service, "-green"));
        let forward = || Action::forward(&[(blue.as_str(), 100), (green.as_str(), 0)]);

        let listener_id = self.hex_id(16);
        let listener = arn::listener_in(scope, &lb_name, &lb_id, &listener_id);
        let production = if setup.production_rule {
            let not_found = Action::FixedResponse {
                status_code: 404,
                content_type: "text/plain".into(),
                body: "not found".into(),
            };
            self.lb.add_route(
                &listener,
                RouteKind::Listener,
                false,
                route(vec![not_found]),
            );
            let rule =
                arn::listener_rule_in(scope, &lb_name, &lb_id, &listener_id, &self.hex_id(16));
            let mut config = route(vec![forward()]);
            config.priority = Some(10);
            config.conditions = vec![Condition {
                field: "host-header".into(),
                values: vec![format!("{}.example.com", key.service)],
            }];
            if let Some(Action::Forward(f)) = config.actions.first_mut() {
                f.stickiness = Some(Stickiness {
                    enabled: false,
                    duration_seconds: 3600,
                });
            }
            sticky(&mut config, setup.production_stickiness);
            self.lb.add_route(&rule, RouteKind::Rule, true, config);
            Route::Rule(rule)
        } else {
            let mut config = route(vec![forward()]);
            sticky(&mut config, setup.production_stickiness);
            self.lb
                .add_route(&listener, RouteKind::Listener, true, config);
            Route::Listener(listener)
        };
        let test = setup.test_listener.then(|| {
            let test = arn::listener_in(scope, &lb_name, &lb_id, &self.hex_id(16));
            self.lb
                .add_route(&test, RouteKind::Listener, false, route(vec![forward()]));
            Route::Listener(test)
        });

        let id = format!("ecs-svc/{}", self.digits(19));
        let task_set = SimTaskSet {
            arn: arn::task_set_in(&key.scope, &key.cluster, &key.service, &id),
            id: id.clone(),
            task_definition: task_definition.clone(),
            external_id: setup.initial_external_id.clone(),
            status: TaskSetStatus::Primary,
            scale_percent: 100.0,
            target_group: Some(blue.clone()),
            container_port: setup.container_port,
            placement: Placement {
                network: Some(Network {
                    subnets: vec!["subnet-0a1b2c3d".into()],
                    security_groups: vec![],
                    assign_public_ip: false,
                }),
                launch: None,
            },
            tasks: BTreeMap::new(),
            created_at: self.now,
        };
        let native = (setup.deployment_controller == NATIVE_CONTROLLER).then(|| {
            NativeService::new(
                &production,
                test.as_ref(),
                [blue.clone(), green.clone()],
                &setup.container,
                setup.container_port,
                &task_definition,
                setup.initial_task_set.then(|| id.clone()),
            )
        });
        // A native service's revisions are not task sets anyone can name.
        let initial_task_set =
            (setup.initial_task_set && native.is_none()).then(|| task_set.arn.clone());
        let task_sets = if setup.initial_task_set {
            vec![task_set]
        } else {
            vec![]
        };
        self.services
            .clusters
            .insert((key.scope.clone(), key.cluster.clone()));
        self.services.by_key.insert(
            key.clone(),
            Service {
                desired_count: setup.desired_count,
                deployment_controller: setup.deployment_controller.clone(),
                task_sets,
                stopped_tasks: Vec::new(),
                removed: Vec::new(),
                base_task_definition: task_definition.clone(),
                native,
            },
        );
        // Registered long enough ago to have passed its health checks.
        let check = self.config.health_check;
        let warm = check.interval * check.healthy_threshold.max(1);
        let registered = crate::time::Timestamp(self.now.0 - warm.as_millis() as i64);
        if setup.initial_task_set {
            for _ in 0..setup.desired_count {
                self.add_running_task(&key, &id, registered);
            }
        }
        self.route_changed(production.arn());
        if setup.initial_task_set {
            self.log(format!("{key}: service added, running {task_definition}"));
        } else {
            self.log(format!("{key}: service added without task sets"));
        }
        Ok(ServiceArns {
            load_balancer: arn::load_balancer_in(&key.scope, &lb_name, &lb_id),
            key,
            production,
            test,
            target_groups: [blue, green],
            initial_task_set,
            container: setup.container,
            container_port: setup.container_port,
        })
    }

    fn add_target_group(&mut self, scope: &Scope, name: &str) -> String {
        let arn = arn::target_group_in(scope, name, &self.hex_id(16));
        self.lb.target_groups.insert(
            arn.clone(),
            TargetGroup {
                name: name.to_string(),
                health_check: self.config.health_check,
                deregistration_delay: self.config.deregistration_delay,
                targets: BTreeMap::new(),
            },
        );
        arn
    }
}

fn route(actions: Vec<Action>) -> RouteConfig {
    RouteConfig {
        actions,
        conditions: vec![],
        priority: None,
    }
}
