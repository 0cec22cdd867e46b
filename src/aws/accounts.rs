//! One set of AWS clients per account and region the records name.
//!
//! The controller's own account and region use the base configuration.
//! Another region of the same account uses the same credentials, signed for
//! that region. Another account is reached by assuming a role there through
//! STS (the role a record names, or `[accounts] role_name` in that account),
//! with the configured external id.
//!
//! aws-config's `AssumeRoleProvider` does not cache: each resolution is an
//! `sts:AssumeRole` call. Each scope therefore gets its own lazy identity
//! cache, which keeps the credentials until shortly before they expire and
//! then assumes the role again on the next call. One cache per scope also
//! keeps a fleet of more than 64 accounts from evicting each other's
//! credentials (the lazy cache holds 64 partitions). No session length is
//! asked for: STS's default is an hour, the most a chained role session
//! (the controller's own task role assuming another) may last.
//!
//! Clients are made once per scope, on its first call, and reused; never in
//! a reconcile pass's own path beyond that first look-up.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use aws_config::identity::IdentityCache;
use aws_config::sts::AssumeRoleProvider;
use aws_config::{Region, SdkConfig};

use super::calls::{ApiCalls, ecs_client};
use crate::cloud::scopes::Scopes;
use crate::cloud::{CloudError, ErrorKind};
pub use crate::config::AccountsConfig;
use crate::rollout::Scope;
use crate::rollout::account::partition;

/// The clients of one account and region.
#[derive(Clone, Debug)]
pub struct Clients {
    pub ecs: aws_sdk_ecs::Client,
    pub elb: aws_sdk_elasticloadbalancingv2::Client,
    /// What a failing call there is annotated with (empty at home).
    pub reached: String,
}

/// Where a scope's clients come from: the region, and the role assumed
/// (`None`: the controller's own credentials).
type Reach = (Option<String>, Option<String>);

/// Every scope's clients, made on first use.
pub struct Accounts {
    /// The base configuration builder's inputs, to make each scope's own.
    endpoint: super::Endpoint,
    home: Arc<Clients>,
    home_sdk: SdkConfig,
    config: AccountsConfig,
    scopes: Arc<Scopes>,
    calls: ApiCalls,
    made: Mutex<HashMap<Reach, Arc<Clients>>>,
}

impl std::fmt::Debug for Accounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Accounts")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// A short session name that says who is calling, valid under every
/// documented limit (2-32 characters of `[\w+=,.@-]`); it shows in the
/// target account's CloudTrail.
fn session_name() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_default();
    let short: String = host
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(23)
        .collect();
    if short.is_empty() {
        "cutover".into()
    } else {
        format!("cutover-{short}")
    }
}

impl Accounts {
    /// `sdk` is the controller's own configuration (made from `endpoint`).
    pub fn new(
        sdk: &SdkConfig,
        endpoint: &super::Endpoint,
        config: &AccountsConfig,
        scopes: Arc<Scopes>,
        calls: &ApiCalls,
    ) -> Arc<Accounts> {
        Arc::new(Accounts {
            endpoint: endpoint.clone(),
            home: Arc::new(Self::clients_of(sdk, calls, String::new())),
            home_sdk: sdk.clone(),
            config: config.clone(),
            scopes,
            calls: calls.clone(),
            made: Mutex::default(),
        })
    }

    pub fn scopes(&self) -> &Arc<Scopes> {
        &self.scopes
    }

    fn clients_of(sdk: &SdkConfig, calls: &ApiCalls, reached: String) -> Clients {
        let elb = aws_sdk_elasticloadbalancingv2::config::Builder::from(sdk)
            .interceptor(super::calls::interceptor(calls))
            .build();
        Clients {
            ecs: ecs_client(sdk, calls),
            elb: aws_sdk_elasticloadbalancingv2::Client::from_conf(elb),
            reached,
        }
    }

    /// The controller's own clients.
    pub fn home(&self) -> Arc<Clients> {
        Arc::clone(&self.home)
    }

    /// The clients of `scope`. Fails, for that scope's services alone, when
    /// no role is known for its account or the records there disagree.
    pub async fn clients(&self, scope: &Scope) -> Result<Arc<Clients>, CloudError> {
        let reach = match scope {
            Scope::Home => return Ok(self.home()),
            Scope::Region(region) => (Some(region.clone()), None),
            Scope::Account { region, account } => {
                (Some(region.clone()), Some(self.role(region, account)?))
            }
        };
        if let Some(made) = self.lock().get(&reach) {
            return Ok(Arc::clone(made));
        }
        let made = Arc::new(self.make(&reach).await);
        Ok(Arc::clone(self.lock().entry(reach).or_insert(made)))
    }

    /// The clients for the resource an ARN names.
    pub async fn clients_for(&self, arn: &str) -> Result<Arc<Clients>, CloudError> {
        self.clients(&self.scopes.of_arn(arn)).await
    }

    fn role(&self, region: &str, account: &str) -> Result<String, CloudError> {
        let conflict = |e: String| CloudError::new(ErrorKind::Invalid, "sts:AssumeRole", e);
        match self
            .scopes
            .role(account)
            .map_err(|e| conflict(e.to_string()))?
        {
            Some(role) => Ok(role),
            None => match &self.config.role_name {
                Some(name) => Ok(format!(
                    "arn:{}:iam::{account}:role/{name}",
                    partition(region)
                )),
                None => Err(conflict(format!(
                    "no role to assume in account {account}: write `role_arn` in the record, \
                     or set `[accounts] role_name` in the configuration"
                ))),
            },
        }
    }

    async fn make(&self, (region, role): &Reach) -> Clients {
        let region = region.clone().unwrap_or_default();
        let Some(role) = role else {
            // The same credentials, signed for another region.
            let sdk = self
                .home_sdk
                .to_builder()
                .region(Region::new(region.clone()))
                .build();
            let reached = format!("in region {region}");
            return Self::clients_of(&sdk, &self.calls, reached);
        };
        let mut provider = AssumeRoleProvider::builder(role.clone())
            .session_name(session_name())
            .region(Region::new(region.clone()))
            .configure(&self.home_sdk);
        if let Some(id) = &self.config.external_id {
            provider = provider.external_id(id.clone());
        }
        let provider = provider.build().await;
        let sdk = super::loader(&super::Endpoint {
            region: Some(region.clone()),
            url: self.endpoint.url.clone(),
        })
        .credentials_provider(provider)
        .identity_cache(IdentityCache::lazy().build())
        .load()
        .await;
        tracing::info!(region = %region, role = %role, "AWS clients for another account");
        Self::clients_of(
            &sdk,
            &self.calls,
            format!("in region {region} as role {role}"),
        )
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Reach, Arc<Clients>>> {
        self.made.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A failed call outside home says where it went: the region, and the
/// role, whose assumption may be what failed.
pub fn tag(mut e: CloudError, reached: &str) -> CloudError {
    if !reached.is_empty() {
        e.message = format!("{} ({reached})", e.message);
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_names_fit_every_documented_limit() {
        let name = session_name();
        assert!((2..=32).contains(&name.len()), "{name}");
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c))
        );
    }

    #[test]
    fn the_accounts_table_is_checked() {
        let ok = AccountsConfig {
            role_name: Some("deploy/cutover-target".into()),
            external_id: Some("cutover-prod".into()),
        };
        assert_eq!(ok.validate(), Ok(()));
        let bad = AccountsConfig {
            role_name: Some("arn:aws:iam::210987654321:role/x".into()),
            ..AccountsConfig::default()
        };
        assert!(bad.validate().unwrap_err().contains("role_name"));
        let bad = AccountsConfig {
            external_id: Some("x".into()),
            ..AccountsConfig::default()
        };
        assert!(bad.validate().unwrap_err().contains("external_id"));
    }

    #[tokio::test]
    async fn a_scope_without_a_role_fails_alone_and_names_the_fix() {
        let endpoint = super::super::Endpoint {
            region: Some("us-east-1".into()),
            url: Some("http://127.0.0.1:9".into()),
        };
        let sdk = super::super::sdk_config(&endpoint).await;
        let scopes = Arc::new(Scopes::new(Some("us-east-1".into())));
        let accounts = Accounts::new(
            &sdk,
            &endpoint,
            &AccountsConfig::default(),
            scopes,
            &ApiCalls::new(),
        );
        let other = Scope::Account {
            region: "eu-west-1".into(),
            account: "210987654321".into(),
        };
        let e = accounts.clients(&other).await.unwrap_err();
        assert!(
            e.message.contains("role_arn") && e.message.contains("210987654321"),
            "{e}"
        );
        let west = accounts
            .clients(&Scope::Region("us-west-2".into()))
            .await
            .unwrap();
        let again = accounts
            .clients(&Scope::Region("us-west-2".into()))
            .await
            .unwrap();
        assert!(
            Arc::ptr_eq(&west, &again),
            "a scope's clients are made once"
        );
    }
}
