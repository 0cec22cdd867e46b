//! An ECS service behind an ALB on the emulator, set up the way a platform
//! team would, with the plain SDK; and the `cutover run` daemon as a child
//! process that is killed if a test fails.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_ecs::types::{
    AwsVpcConfiguration, Compatibility, ContainerDefinition, DeploymentController,
    DeploymentControllerType, LaunchType, LoadBalancer, NetworkConfiguration, NetworkMode,
    PortMapping, Scale, ScaleUnit,
};
use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, ForwardActionConfig, ProtocolEnum, TargetDescription, TargetGroupTuple,
};
use serde_json::{Value, json};

use crate::support;
use crate::support::emulator::{Exclusive, exclusive};

pub const CLUSTER: &str = "prod";
pub const SERVICE: &str = "web";
pub const TABLE: &str = "cutover-e2e";

pub struct World {
    pub emulator: Exclusive,
    pub ecs: aws_sdk_ecs::Client,
    pub elb: aws_sdk_elasticloadbalancingv2::Client,
    pub ddb: aws_sdk_dynamodb::Client,
    pub blue: String,
    pub green: String,
    pub production: String,
    pub test_listener: String,
    pub initial_task_set: String,
}

pub async fn world() -> World {
    let emulator = exclusive().await;
    let config = support::aws::config(&emulator).await;
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&config);
    let ecs = aws_sdk_ecs::Client::new(&config);
    let ddb = aws_sdk_dynamodb::Client::new(&config);

    let support::aws::Network { vpc, subnets } = support::aws::network(&emulator).await;
    let (lb, blue, green) = support::aws::blue_green(&elb, "shop", &subnets, &vpc).await;
    let forward = |w_blue: i32| {
        Action::builder()
            .r#type(ActionTypeEnum::Forward)
            .forward_config(
                ForwardActionConfig::builder()
                    .target_groups(
                        TargetGroupTuple::builder()
                            .target_group_arn(&blue)
                            .weight(w_blue)
                            .build(),
                    )
                    .target_groups(
                        TargetGroupTuple::builder()
                            .target_group_arn(&green)
                            .weight(100 - w_blue)
                            .build(),
                    )
                    .build(),
            )
            .build()
    };
    let mut listeners = vec![];
    for port in [80, 8080] {
        let l = elb
            .create_listener()
            .load_balancer_arn(&lb)
            .protocol(ProtocolEnum::Http)
            .port(port)
            .default_actions(forward(100))
            .send()
            .await
            .unwrap();
        listeners.push(l.listeners.unwrap().remove(0).listener_arn.unwrap());
    }

    ecs.create_cluster()
        .cluster_name(CLUSTER)
        .send()
        .await
        .unwrap();
    for image in ["registry.example/web:1", "registry.example/web:2"] {
        ecs.register_task_definition()
            .family("web")
            .network_mode(NetworkMode::Awsvpc)
            .requires_compatibilities(Compatibility::Fargate)
            .cpu("256")
            .memory("512")
            .container_definitions(
                ContainerDefinition::builder()
                    .name("app")
                    .image(image)
                    .memory(512)
                    .port_mappings(PortMapping::builder().container_port(8080).build())
                    .build(),
            )
            .send()
            .await
            .unwrap();
    }
    // Desired count 0: the emulator cannot place awsvpc tasks; the tests
    // play ECS's part by registering targets themselves.
    ecs.create_service()
        .cluster(CLUSTER)
        .service_name(SERVICE)
        .desired_count(0)
        .deployment_controller(
            DeploymentController::builder()
                .r#type(DeploymentControllerType::External)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let ts = ecs
        .create_task_set()
        .cluster(CLUSTER)
        .service(SERVICE)
        .task_definition("web:1")
        .launch_type(LaunchType::Fargate)
        .network_configuration(
            NetworkConfiguration::builder()
                .awsvpc_configuration(
                    AwsVpcConfiguration::builder()
                        .set_subnets(Some(subnets))
                        .security_groups("sg-0123456789abcdef0")
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .load_balancers(
            LoadBalancer::builder()
                .target_group_arn(&blue)
                .container_name("app")
                .container_port(8080)
                .build(),
        )
        .scale(
            Scale::builder()
                .unit(ScaleUnit::Percent)
                .value(100.0)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let initial = ts.task_set.unwrap().task_set_arn.unwrap();
    ecs.update_service_primary_task_set()
        .cluster(CLUSTER)
        .service(SERVICE)
        .primary_task_set(&initial)
        .send()
        .await
        .unwrap();
    let w = World {
        emulator,
        ecs,
        elb,
        ddb,
        blue,
        green,
        production: listeners[0].clone(),
        test_listener: listeners[1].clone(),
        initial_task_set: initial,
    };
    w.register_targets(&w.blue.clone(), 10).await;
    w
}

impl World {
    pub fn endpoint(&self) -> String {
        self.emulator.endpoint()
    }

    /// The record a team writes, as plain JSON.
    pub fn record(&self, task_definition: &str, strategy: Value, deadline: &str) -> Value {
        json!({
            "service": format!("{CLUSTER}/{SERVICE}"),
            "task_definition": task_definition,
            "container": "app",
            "container_port": 8080,
            "production_listener": self.production,
            "test_listener": self.test_listener,
            "target_groups": [self.blue, self.green],
            "strategy": strategy,
            "bake": "2s",
            "progress_deadline": deadline,
        })
    }

    /// A plain `PutItem`, the way `aws dynamodb put-item` writes.
    pub async fn put_record(&self, record: &Value) {
        let item: std::collections::HashMap<String, AttributeValue> =
            serde_dynamo::to_item(record).unwrap();
        self.ddb
            .put_item()
            .table_name(TABLE)
            .set_item(Some(item))
            .send()
            .await
            .unwrap();
    }

    /// The whole item written with the real `aws dynamodb put-item`, as the
    /// README shows a team doing it; `false` (said on stderr) where the
    /// pinned CLI cannot be installed.
    pub fn put_record_with_aws_cli(&self, record: &Value) -> bool {
        let Some(cli) = support::awscli::path("e2e") else {
            return false;
        };
        let out = Command::new(cli)
            .args(["dynamodb", "put-item", "--table-name", TABLE])
            .args(["--endpoint-url", &self.endpoint()])
            .args(["--region", support::aws::REGION])
            .args(["--item", &attributes(record).to_string()])
            .output()
            .unwrap_or_else(|e| panic!("the installed AWS CLI does not run: {e}"));
        assert!(
            out.status.success(),
            "aws dynamodb put-item: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        true
    }

    pub async fn status(&self) -> Option<Value> {
        let out = self
            .ddb
            .get_item()
            .table_name(TABLE)
            .key("service", AttributeValue::S(format!("{CLUSTER}/{SERVICE}")))
            .consistent_read(true)
            .send()
            .await
            .unwrap();
        let item = out.item?;
        let v: Value = serde_dynamo::from_item(item).unwrap();
        v.get("status").cloned()
    }

    /// The service's task sets as (arn, externalId, status).
    pub async fn task_sets(&self) -> Vec<(String, Option<String>, String)> {
        let out = self
            .ecs
            .describe_services()
            .cluster(CLUSTER)
            .services(SERVICE)
            .send()
            .await
            .unwrap();
        let svc = out.services.unwrap().remove(0);
        svc.task_sets
            .unwrap_or_default()
            .into_iter()
            .map(|t| {
                (
                    t.task_set_arn.unwrap_or_default(),
                    t.external_id,
                    t.status.unwrap_or_default(),
                )
            })
            .collect()
    }

    /// Green's share of a listener's forward action, in percent.
    pub async fn green_share(&self, listener: &str) -> u32 {
        let out = self
            .elb
            .describe_listeners()
            .listener_arns(listener)
            .send()
            .await
            .unwrap();
        let actions = out
            .listeners
            .unwrap()
            .remove(0)
            .default_actions
            .unwrap_or_default();
        let groups = actions[0]
            .forward_config
            .as_ref()
            .unwrap()
            .target_groups
            .clone()
            .unwrap_or_default();
        let total: i32 = groups.iter().map(|g| g.weight.unwrap_or(0)).sum();
        let green: i32 = groups
            .iter()
            .filter(|g| g.target_group_arn.as_deref() == Some(&self.green))
            .map(|g| g.weight.unwrap_or(0))
            .sum();
        if total == 0 {
            0
        } else {
            (green * 100 / total) as u32
        }
    }

    /// What ECS would do when tasks start: IP targets in the task set's group.
    pub async fn register_targets(&self, target_group: &str, first_octet: u8) {
        let mut req = self.elb.register_targets().target_group_arn(target_group);
        for i in 1..=2 {
            req = req.targets(
                TargetDescription::builder()
                    .id(format!("10.0.{first_octet}.{i}"))
                    .port(8080)
                    .build(),
            );
        }
        req.send().await.unwrap();
    }
}

/// A JSON object in DynamoDB's typed JSON (`{"S": …}`, `{"N": …}`…), as
/// `aws dynamodb put-item --item` takes it.
fn attributes(record: &Value) -> Value {
    fn typed(v: &Value) -> Value {
        match v {
            Value::Null => json!({"NULL": true}),
            Value::Bool(b) => json!({"BOOL": b}),
            Value::Number(n) => json!({"N": n.to_string()}),
            Value::String(s) => json!({"S": s}),
            Value::Array(items) => json!({"L": items.iter().map(typed).collect::<Vec<_>>()}),
            Value::Object(_) => json!({"M": attributes(v)}),
        }
    }
    let fields = record.as_object().cloned().unwrap_or_default();
    Value::Object(fields.iter().map(|(k, v)| (k.clone(), typed(v))).collect())
}

/// The daemon as a child process; killed on drop so a failed test leaves
/// nothing running.
pub struct Daemon {
    child: Child,
    pub log: std::path::PathBuf,
}

impl Daemon {
    pub fn start(endpoint: &str) -> Daemon {
        Daemon::start_with(endpoint, &[])
    }

    /// Like `start`, with settings (`CUTOVER_*` variables) of the test's own.
    pub fn start_with(endpoint: &str, settings: &[(&str, &str)]) -> Daemon {
        let log = std::env::temp_dir().join(format!(
            "cutover-e2e-{}-{}.log",
            std::process::id(),
            rand_suffix()
        ));
        let file = std::fs::File::create(&log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_cutover"))
            .arg("run")
            .env("CUTOVER_ENDPOINT_URL", endpoint)
            .env("CUTOVER_TABLE", TABLE)
            .env("CUTOVER_REGION", "us-east-1")
            .env("CUTOVER_POLL_INTERVAL", "300ms")
            .env("CUTOVER_RESYNC_INTERVAL", "5s")
            .env("CUTOVER_LISTEN", "127.0.0.1:0")
            .env("CUTOVER_LOG_FORMAT", "text")
            .envs(settings.iter().copied())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .unwrap();
        Daemon { child, log }
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The address the daemon logged it listens on (it picks a free port).
    pub fn address(&self) -> String {
        let logs = self.logs();
        let field = logs
            .split_whitespace()
            .find_map(|w| w.strip_prefix("listen="))
            .unwrap_or_else(|| panic!("no listen= in the logs:\n{logs}"));
        field.trim_matches('"').to_string()
    }

    /// GET `path` from the daemon's HTTP server.
    pub async fn get(&self, path: &str) -> String {
        let url = format!("http://{}{path}", self.address());
        reqwest::get(&url)
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}"))
            .text()
            .await
            .unwrap()
    }

    /// SIGTERM and wait: the daemon must stop cleanly.
    pub fn stop(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "cutover did not stop after SIGTERM:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

pub fn init_table(endpoint: &str) {
    let out = Command::new(env!("CARGO_BIN_EXE_cutover"))
        .arg("init-table")
        .env("CUTOVER_ENDPOINT_URL", endpoint)
        .env("CUTOVER_TABLE", TABLE)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "init-table: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
