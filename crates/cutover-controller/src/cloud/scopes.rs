//! Where the services live: the accounts the records name, and the role
//! each record names in its account. The adapters ask it which account and
//! region a call goes to, and with which role, when the port hands them an
//! ARN rather than a key (a load balancer route, a target group, a service
//! deployment); the request budgets ask it which bucket a call draws from.
//!
//! It learns from the records as the store reads them: every pass reads
//! its record before it calls AWS, so the role a record names is known
//! before any call made for it.

use std::collections::{BTreeMap, HashMap};
use std::sync::{PoisonError, RwLock};

use super::StoredRecord;
use crate::rollout::account::arn_region_account;
use crate::rollout::{Scope, ServiceKey};

/// The role a record names, or `None` for the configured default role.
type Named = Option<String>;

#[derive(Debug, Default)]
pub struct Scopes {
    /// The controller's own region, when known: an ARN elsewhere in its
    /// own account is that region's scope.
    home_region: Option<String>,
    /// Keys that name an account, by account, with the role each names.
    accounts: RwLock<HashMap<String, BTreeMap<ServiceKey, Named>>>,
}

/// Two records in one account name different roles: cutover assumes one
/// role per account, so neither is used until they agree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleConflict {
    pub account: String,
    pub first: (ServiceKey, String),
    pub second: (ServiceKey, String),
}

impl std::fmt::Display for RoleConflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let role = |r: &str| {
            if r.is_empty() {
                "no role_arn (the configured role)".to_string()
            } else {
                format!("role_arn {r}")
            }
        };
        write!(
            f,
            "records in account {} name different roles: {} has {}, {} has {}; \
             cutover assumes one role per account: write the same role_arn in both (or in neither)",
            self.account,
            self.first.0,
            role(&self.first.1),
            self.second.0,
            role(&self.second.1)
        )
    }
}

impl Scopes {
    pub fn new(home_region: Option<String>) -> Self {
        Scopes {
            home_region,
            accounts: RwLock::default(),
        }
    }

    /// What a record read says: the role its key's account is reached with.
    /// A record that does not parse keeps what its last valid version said,
    /// as its rollout does.
    pub fn learn(&self, record: &StoredRecord) {
        let Some(account) = record.key.scope.account() else {
            return;
        };
        let role = match record.spec() {
            Ok(spec) => Some(spec.role_arn),
            Err(_) => None,
        };
        let mut accounts = self.write();
        let keys = accounts.entry(account.to_string()).or_default();
        match role {
            Some(role) => {
                keys.insert(record.key.clone(), role);
            }
            None => {
                keys.entry(record.key.clone()).or_insert(None);
            }
        }
    }

    /// A full read of the table: exactly these records exist.
    pub fn learn_all<'a>(&self, records: impl IntoIterator<Item = &'a StoredRecord>) {
        let records: Vec<&StoredRecord> = records.into_iter().collect();
        {
            let mut accounts = self.write();
            let present: std::collections::HashSet<&ServiceKey> =
                records.iter().map(|r| &r.key).collect();
            for keys in accounts.values_mut() {
                keys.retain(|k, _| present.contains(k));
            }
            accounts.retain(|_, keys| !keys.is_empty());
        }
        for record in records {
            self.learn(record);
        }
    }

    /// The record of `key` is gone.
    pub fn forget(&self, key: &ServiceKey) {
        let Some(account) = key.scope.account() else {
            return;
        };
        let mut accounts = self.write();
        if let Some(keys) = accounts.get_mut(account) {
            keys.remove(key);
            if keys.is_empty() {
                accounts.remove(account);
            }
        }
    }

    /// The role the records in `account` name: `Ok(None)` when none does
    /// (the configured role then).
    pub fn role(&self, account: &str) -> Result<Option<String>, Box<RoleConflict>> {
        let accounts = self.read();
        let Some(keys) = accounts.get(account) else {
            return Ok(None);
        };
        let mut first: Option<(&ServiceKey, &Named)> = None;
        for (key, role) in keys {
            match first {
                None => first = Some((key, role)),
                Some((k, r)) if r != role => {
                    return Err(Box::new(RoleConflict {
                        account: account.to_string(),
                        first: (k.clone(), r.clone().unwrap_or_default()),
                        second: (key.clone(), role.clone().unwrap_or_default()),
                    }));
                }
                Some(_) => {}
            }
        }
        Ok(first.and_then(|(_, r)| r.clone()))
    }

    /// The scope of the resource an ARN names: an account a record names
    /// is reached as that account; the controller's own account elsewhere
    /// than its region is that region; anything else is home.
    pub fn of_arn(&self, arn: &str) -> Scope {
        let Some((region, account)) = arn_region_account(arn) else {
            return Scope::Home;
        };
        if self.read().contains_key(account) {
            return Scope::Account {
                region: region.to_string(),
                account: account.to_string(),
            };
        }
        match &self.home_region {
            Some(home) if home != region && !region.is_empty() => Scope::Region(region.to_string()),
            _ => Scope::Home,
        }
    }

    /// Every scope the records name besides home, for the metrics.
    pub fn accounts(&self) -> Vec<String> {
        self.read().keys().cloned().collect()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, BTreeMap<ServiceKey, Named>>> {
        self.accounts.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(
        &self,
    ) -> std::sync::RwLockWriteGuard<'_, HashMap<String, BTreeMap<ServiceKey, Named>>> {
        self.accounts
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const ACCOUNT: &str = "210987654321";

    fn record(key: &str, role: Option<&str>) -> StoredRecord {
        let key: ServiceKey = key.parse().unwrap();
        let region = key.scope.region().unwrap_or("us-east-1").to_string();
        let lb = format!("arn:aws:elasticloadbalancing:{region}:{ACCOUNT}");
        let mut body = json!({
            "service": key.to_string(),
            "task_definition": "web:2",
            "container": "app",
            "container_port": 8080,
            "production_listener": format!("{lb}:listener/app/shop/1/2"),
            "target_groups": [format!("{lb}:targetgroup/blue/1"), format!("{lb}:targetgroup/green/2")],
        });
        if let Some(role) = role {
            body["role_arn"] = json!(role);
        }
        StoredRecord {
            key,
            body,
            status: None,
            status_version: 0,
            written_at: None,
            unreadable: vec![],
        }
    }

    #[test]
    fn an_arn_in_an_account_a_record_names_is_that_accounts_scope() {
        let scopes = Scopes::new(Some("us-east-1".into()));
        let tg = format!("arn:aws:elasticloadbalancing:eu-west-1:{ACCOUNT}:targetgroup/blue/1");
        assert_eq!(scopes.of_arn(&tg), Scope::Region("eu-west-1".into()));
        scopes.learn(&record(&format!("eu-west-1:{ACCOUNT}:prod/web"), None));
        assert_eq!(
            scopes.of_arn(&tg),
            Scope::Account {
                region: "eu-west-1".into(),
                account: ACCOUNT.into()
            }
        );
        let home = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/blue/1";
        assert_eq!(scopes.of_arn(home), Scope::Home);
        scopes.learn_all([]);
        assert_eq!(scopes.of_arn(&tg), Scope::Region("eu-west-1".into()));
    }

    #[test]
    fn records_of_one_account_that_name_different_roles_conflict() {
        let scopes = Scopes::new(None);
        let role = format!("arn:aws:iam::{ACCOUNT}:role/deployer");
        scopes.learn(&record(
            &format!("eu-west-1:{ACCOUNT}:prod/web"),
            Some(&role),
        ));
        assert_eq!(scopes.role(ACCOUNT), Ok(Some(role.clone())));
        scopes.learn(&record(
            &format!("eu-west-1:{ACCOUNT}:prod/api"),
            Some(&role),
        ));
        assert_eq!(scopes.role(ACCOUNT), Ok(Some(role.clone())));
        let other = record(&format!("us-west-2:{ACCOUNT}:prod/web"), None);
        scopes.learn(&other);
        let e = scopes.role(ACCOUNT).unwrap_err().to_string();
        assert!(
            e.contains("deployer") && e.contains("the configured role"),
            "{e}"
        );
        scopes.forget(&other.key);
        assert_eq!(scopes.role(ACCOUNT), Ok(Some(role)));
        assert_eq!(scopes.role("111122223333"), Ok(None));
    }
}
