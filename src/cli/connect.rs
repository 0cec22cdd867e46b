//! What the platform-team commands share: the daemon's configuration and
//! credentials, the table, and the record of one service.

use std::sync::Arc;

use anyhow::{Context, bail};
use aws_config::SdkConfig;

use super::setup::{ConfigArgs, endpoint};
use crate::aws::accounts::Accounts;
use crate::aws::alb::AlbAdapter;
use crate::aws::calls::ApiCalls;
use crate::aws::ecs::EcsAdapter;
use crate::aws::sdk_config;
use crate::aws::service_deployments::ServiceDeploymentsAdapter;
use crate::aws::store::DynamoStore;
use crate::cloud::scopes::Scopes;
use crate::cloud::{DesiredStore, StoredRecord};
use crate::config::Config;
use crate::rollout::ServiceKey;

/// The service a command is about, as `<cluster>/<service>`; a malformed key
/// is a usage error, reported by clap.
#[derive(clap::Args, Debug, Clone)]
pub struct ServiceArg {
    /// The service, as <cluster>/<service>.
    #[arg(value_name = "CLUSTER/SERVICE")]
    pub key: ServiceKey,
}

pub struct Aws {
    pub config: Config,
    pub sdk: SdkConfig,
    /// Clients for the accounts and regions records name, as `cutover run`
    /// keeps them: a service elsewhere is read where it is.
    accounts: Arc<Accounts>,
    scopes: Arc<Scopes>,
}

impl Aws {
    /// Same configuration and credential chain as `cutover run`.
    pub async fn connect(args: &ConfigArgs) -> anyhow::Result<Aws> {
        let config = args.load()?;
        let sdk = sdk_config(&endpoint(&config)).await;
        let scopes = Arc::new(Scopes::new(sdk.region().map(|r| r.to_string())));
        let accounts = Accounts::new(
            &sdk,
            &endpoint(&config),
            &config.accounts,
            Arc::clone(&scopes),
            &ApiCalls::new(),
        );
        Ok(Aws {
            config,
            sdk,
            accounts,
            scopes,
        })
    }

    /// The table; every record it reads teaches the role of its account.
    pub fn store(&self) -> DynamoStore {
        DynamoStore::new(&self.sdk, &self.config.table).with_scopes(Arc::clone(&self.scopes))
    }

    pub fn ecs(&self) -> EcsAdapter {
        EcsAdapter::scoped(Arc::clone(&self.accounts))
    }

    pub fn lb(&self) -> AlbAdapter {
        AlbAdapter::scoped(Arc::clone(&self.accounts))
    }

    pub fn codedeploy(&self) -> crate::aws::codedeploy::CodeDeployAdapter {
        crate::aws::codedeploy::CodeDeployAdapter::new(&self.sdk, &ApiCalls::new())
    }

    pub fn service_deployments(&self) -> ServiceDeploymentsAdapter {
        ServiceDeploymentsAdapter::scoped(Arc::clone(&self.accounts))
    }

    /// The record, or an error that says where it was looked for.
    pub async fn record(
        &self,
        store: &dyn DesiredStore,
        key: &ServiceKey,
    ) -> anyhow::Result<StoredRecord> {
        match self.read(store, key).await? {
            Some(record) => Ok(record),
            None => bail!(
                "{key} has no record in table {}: write one with `cutover set {key} ...`",
                self.config.table
            ),
        }
    }

    pub async fn read(
        &self,
        store: &dyn DesiredStore,
        key: &ServiceKey,
    ) -> anyhow::Result<Option<StoredRecord>> {
        store
            .get(key)
            .await
            .with_context(|| format!("reading {key} from table {}", self.config.table))
    }
}

/// A request that cannot be carried out as given: exit code 2, like clap's
/// own usage errors.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Usage(pub String);
