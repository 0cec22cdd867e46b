//! Registering a `taskdef.json` at most once: a revision of the family
//! registered from the same file (and images) earlier is reused.
//!
//! ECS fills in defaults when it registers (`essential`, `hostPort`,
//! `protocol`, empty lists), so a revision described back never equals the
//! file as written. Each revision cutover registers is tagged with a digest
//! of the file instead, and a revision with the same digest, or one that is
//! equal as described, is reused.

use std::sync::Arc;

use aws_config::BehaviorVersion;
use aws_sdk_ecs::Client;
use aws_sdk_ecs::config::{Credentials, Region};
use aws_sdk_ecs::types::{Tag, TaskDefinition};
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::ecs_image::{Registration, describe, newest_revisions, register};
use crate::cloud::{CloudError, ErrorKind};
use crate::rollout::revision::canonical_json;

/// The tag that carries the digest of the file a revision was registered from.
pub const DIGEST_TAG: &str = "cutover:taskdef-sha256";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Registered {
    pub arn: String,
    /// An earlier revision was reused; nothing was registered.
    pub reused: bool,
}

/// The digest of RegisterTaskDefinition's input, stable across key order.
pub fn digest(input: &Value) -> String {
    hex::encode(&Sha256::digest(canonical_json(input))[..16])
}

/// Answers every request with one canned body.
#[derive(Clone, Debug)]
struct Canned(Arc<Vec<u8>>);

impl HttpConnector for Canned {
    fn call(&self, _request: HttpRequest) -> HttpConnectorFuture {
        let answer = StatusCode::try_from(200u16)
            .map(|ok| HttpResponse::new(ok, SdkBody::from(self.0.to_vec())))
            .map_err(|e| ConnectorError::other(e.into(), None));
        HttpConnectorFuture::ready(answer)
    }
}

impl HttpClient for Canned {
    fn http_connector(
        &self,
        _settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(self.clone())
    }
}

/// RegisterTaskDefinition's input as the SDK's types. The SDK reads ECS's
/// JSON with its own model-generated deserializer, so every field of a task
/// definition is converted exactly as ECS's answer would be: the input is
/// handed to it as a DescribeTaskDefinition answer, over no network at all.
pub async fn from_json(input: &Value) -> Result<(TaskDefinition, Vec<Tag>), String> {
    let mut td = input.clone();
    let tags = td
        .as_object_mut()
        .and_then(|m| m.remove("tags"))
        .unwrap_or(Value::Array(Vec::new()));
    let body = json!({ "taskDefinition": td, "tags": tags });
    let config = aws_sdk_ecs::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("none", "none", None, None, "cutover"))
        .http_client(SharedHttpClient::new(Canned(Arc::new(
            body.to_string().into_bytes(),
        ))))
        .build();
    let out = Client::from_conf(config)
        .describe_task_definition()
        .task_definition("file")
        .send()
        .await
        .map_err(|e| {
            let e = aws_sdk_ecs::error::DisplayErrorContext(e);
            format!("is not a task definition ECS accepts: {e}")
        })?;
    let td = out
        .task_definition
        .ok_or_else(|| "holds no task definition".to_string())?;
    Ok((td, out.tags.unwrap_or_default()))
}

/// The ARN of a revision of `input`'s family registered from the same
/// input: an earlier one, or a new one.
pub async fn register_once(client: &Client, input: &Value) -> Result<Registered, CloudError> {
    const OP: &str = "ecs:RegisterTaskDefinition";
    let (td, mut tags) = from_json(input)
        .await
        .map_err(|m| CloudError::new(ErrorKind::Invalid, OP, m))?;
    let wanted = Registration::of(&td);
    let digest = digest(input);
    for arn in newest_revisions(client, &wanted.family).await? {
        let (existing, existing_tags) = describe(client, &arn).await?;
        let same_file = existing_tags
            .iter()
            .any(|t| t.key() == Some(DIGEST_TAG) && t.value() == Some(digest.as_str()));
        if same_file || Registration::of(&existing) == wanted {
            return Ok(Registered { arn, reused: true });
        }
    }
    tags.retain(|t| t.key() != Some(DIGEST_TAG));
    tags.push(Tag::builder().key(DIGEST_TAG).value(digest).build());
    let arn = register(client, wanted, tags).await?;
    Ok(Registered { arn, reused: false })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_field_of_the_file_reaches_the_sdk() {
        let input = json!({
            "family": "web",
            "networkMode": "awsvpc",
            "cpu": "256",
            "memory": "512",
            "containerDefinitions": [{
                "name": "app",
                "image": "registry/web:2",
                "memory": 256,
                "portMappings": [{"containerPort": 8080, "protocol": "tcp"}],
                "healthCheck": {"command": ["CMD", "true"], "interval": 10},
            }],
            "tags": [{"key": "team", "value": "shop"}],
        });
        let (td, tags) = from_json(&input).await.unwrap();
        let c = &td.container_definitions()[0];
        assert_eq!(td.family(), Some("web"));
        assert_eq!(c.image(), Some("registry/web:2"));
        assert_eq!(c.port_mappings()[0].container_port(), Some(8080));
        assert_eq!(c.health_check().map(|h| h.interval()), Some(Some(10)));
        assert_eq!(tags[0].value(), Some("shop"));
    }

    #[tokio::test]
    async fn a_field_of_the_wrong_type_is_refused() {
        let input =
            json!({"family": "web", "containerDefinitions": [{"name": "app", "memory": "lots"}]});
        let e = from_json(&input).await.unwrap_err();
        assert!(e.starts_with("is not a task definition ECS accepts"), "{e}");
    }

    #[test]
    fn the_digest_ignores_key_order() {
        let a: Value = serde_json::from_str(r#"{"family":"web","cpu":"256"}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"cpu":"256","family":"web"}"#).unwrap();
        assert_eq!(digest(&a), digest(&b));
    }
}
