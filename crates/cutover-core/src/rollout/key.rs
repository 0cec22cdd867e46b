//! The identity of a managed service: `<cluster>/<service>` in the
//! controller's own account and region, or with a scope in front, in ARN
//! order: `<region>:<cluster>/<service>` (the same account, another region)
//! and `<region>:<account>:<cluster>/<service>` (another account).
//!
//! ECS names never hold ':', so a key without one parses as it always did,
//! and the cluster and service names alone are not unique across accounts
//! and regions: the scope is part of the identity.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Where a service lives, relative to the controller.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// The controller's own account and region: a key with no prefix.
    #[default]
    Home,
    /// The controller's own account, in another region.
    Region(String),
    /// Another account (reached by assuming a role in it), in a region.
    Account { region: String, account: String },
}

impl Scope {
    /// The region, when it is not the controller's own.
    pub fn region(&self) -> Option<&str> {
        match self {
            Scope::Home => None,
            Scope::Region(region) | Scope::Account { region, .. } => Some(region),
        }
    }

    /// The account, when it is not the controller's own.
    pub fn account(&self) -> Option<&str> {
        match self {
            Scope::Account { account, .. } => Some(account),
            _ => None,
        }
    }

    pub fn is_home(&self) -> bool {
        matches!(self, Scope::Home)
    }
}

/// The key's prefix, with its ':' (empty at home).
impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Home => Ok(()),
            Scope::Region(region) => write!(f, "{region}:"),
            Scope::Account { region, account } => write!(f, "{region}:{account}:"),
        }
    }
}

/// As the key's prefix without its last ':' (`eu-west-1`,
/// `eu-west-1:210987654321`); empty at home.
impl Serialize for Scope {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self.to_string().trim_end_matches(':'))
    }
}

impl<'de> Deserialize<'de> for Scope {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s.is_empty() {
            return Ok(Scope::Home);
        }
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServiceKey {
    pub scope: Scope,
    pub cluster: String,
    pub service: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "service key {given:?} is not of the form <cluster>/<service> (or <region>:<cluster>/<service>, \
     <region>:<account>:<cluster>/<service>): {why}"
)]
pub struct KeyError {
    pub given: String,
    pub why: &'static str,
}

impl ServiceKey {
    /// A service in the controller's own account and region.
    pub fn new(cluster: impl Into<String>, service: impl Into<String>) -> Self {
        ServiceKey {
            scope: Scope::Home,
            cluster: cluster.into(),
            service: service.into(),
        }
    }

    /// The same service name in `scope`.
    pub fn in_scope(mut self, scope: Scope) -> Self {
        self.scope = scope;
        self
    }
}

/// ECS names: 1-255 letters, digits, hyphens and underscores.
fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 255
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// An AWS region's code: lower-case words and a number joined by '-'
/// (`eu-west-1`, `us-gov-west-1`, `cn-north-1`), at most 32 characters.
pub fn valid_region(s: &str) -> bool {
    let mut parts = s.split('-');
    let first = parts.next().unwrap_or_default();
    let last = s.rsplit('-').next().unwrap_or_default();
    s.len() <= 32
        && s.contains('-')
        && !first.is_empty()
        && first.chars().all(|c| c.is_ascii_lowercase())
        && !last.is_empty()
        && last.chars().all(|c| c.is_ascii_digit())
        && s.split('-').all(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
}

/// An AWS account id: exactly 12 digits.
pub fn valid_account(s: &str) -> bool {
    s.len() == 12 && s.chars().all(|c| c.is_ascii_digit())
}

impl FromStr for Scope {
    type Err = &'static str;
    /// The prefix without its last ':' (`eu-west-1`, `eu-west-1:210987654321`).
    fn from_str(s: &str) -> Result<Self, &'static str> {
        let (region, account) = match s.split_once(':') {
            Some((region, account)) => (region, Some(account)),
            None => (s, None),
        };
        if !valid_region(region) {
            return Err("the region before ':' must be a region code such as eu-west-1");
        }
        match account {
            None => Ok(Scope::Region(region.to_string())),
            Some(account) if valid_account(account) => Ok(Scope::Account {
                region: region.to_string(),
                account: account.to_string(),
            }),
            Some(_) => Err("the account between the region and the cluster must be 12 digits"),
        }
    }
}

impl FromStr for ServiceKey {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self, KeyError> {
        let err = |why| KeyError {
            given: s.to_string(),
            why,
        };
        let (scope, name) = match s.rsplit_once(':') {
            Some((prefix, name)) => (prefix.parse::<Scope>().map_err(err)?, name),
            None => (Scope::Home, s),
        };
        let (cluster, service) = name.split_once('/').ok_or_else(|| err("there is no '/'"))?;
        if service.contains('/') {
            return Err(err("there is more than one '/'"));
        }
        if !valid_name(cluster) {
            return Err(err(
                "the cluster name must be 1-255 letters, digits, '-' or '_'",
            ));
        }
        if !valid_name(service) {
            return Err(err(
                "the service name must be 1-255 letters, digits, '-' or '_'",
            ));
        }
        Ok(ServiceKey::new(cluster, service).in_scope(scope))
    }
}

impl fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}/{}", self.scope, self.cluster, self.service)
    }
}

impl Serialize for ServiceKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ServiceKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cluster_and_service() {
        let k: ServiceKey = "prod/checkout-api".parse().unwrap();
        assert_eq!(k, ServiceKey::new("prod", "checkout-api"));
        assert_eq!(k.scope, Scope::Home);
        assert_eq!(k.to_string(), "prod/checkout-api");
    }

    #[test]
    fn a_region_prefix_names_another_region_of_the_home_account() {
        let k: ServiceKey = "eu-west-1:prod/web".parse().unwrap();
        assert_eq!(k.scope, Scope::Region("eu-west-1".into()));
        assert_eq!((k.cluster.as_str(), k.service.as_str()), ("prod", "web"));
        assert_eq!(k.to_string(), "eu-west-1:prod/web");
        assert_eq!(k.scope.account(), None);
    }

    #[test]
    fn a_region_and_account_prefix_names_another_account() {
        let k: ServiceKey = "us-gov-west-1:210987654321:prod/web".parse().unwrap();
        assert_eq!(
            k.scope,
            Scope::Account {
                region: "us-gov-west-1".into(),
                account: "210987654321".into()
            }
        );
        assert_eq!(k.to_string(), "us-gov-west-1:210987654321:prod/web");
        assert_eq!(k.scope.region(), Some("us-gov-west-1"));
    }

    #[test]
    fn keys_round_trip_through_serde() {
        for s in [
            "prod/web",
            "eu-west-1:prod/web",
            "eu-west-1:210987654321:prod/web",
        ] {
            let k: ServiceKey = serde_json::from_value(serde_json::json!(s)).unwrap();
            assert_eq!(serde_json::to_value(&k).unwrap(), serde_json::json!(s));
            assert_eq!(k.to_string().parse::<ServiceKey>().unwrap(), k);
        }
    }

    #[test]
    fn the_same_names_in_two_scopes_are_two_keys() {
        let home = ServiceKey::new("prod", "web");
        let west = home.clone().in_scope(Scope::Region("us-west-2".into()));
        let other = home.clone().in_scope(Scope::Account {
            region: "us-west-2".into(),
            account: "210987654321".into(),
        });
        assert_ne!(home, west);
        assert_ne!(west, other);
        let set: std::collections::BTreeSet<_> = [&home, &west, &other].into_iter().collect();
        assert_eq!(set.len(), 3);
        assert_eq!(set.first(), Some(&&home), "home keys sort first");
    }

    #[test]
    fn rejects_malformed_keys_with_the_reason() {
        for (bad, why) in [
            ("checkout", "no '/'"),
            ("a/b/c", "more than one"),
            ("/svc", "cluster name"),
            ("prod/", "service name"),
            ("prod/check out", "service name"),
            ("release:spring", "region code"),
            ("halt", "no '/'"),
            ("eu-west-1:spring", "no '/'"),
            ("EU-WEST-1:prod/web", "region code"),
            (":prod/web", "region code"),
            ("eu-west-1:12345:prod/web", "12 digits"),
            ("eu-west-1:210987654321:x:prod/web", "12 digits"),
            ("210987654321:eu-west-1:prod/web", "region code"),
            ("eu-west-1:prod/a/b", "more than one"),
        ] {
            let e = bad.parse::<ServiceKey>().unwrap_err();
            assert!(e.to_string().contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn region_codes() {
        for good in [
            "eu-west-1",
            "us-gov-west-1",
            "cn-north-1",
            "ap-southeast-4",
            "il-central-1",
        ] {
            assert!(valid_region(good), "{good}");
        }
        for bad in [
            "eu",
            "eu-west",
            "-1",
            "eu--1",
            "Eu-west-1",
            "eu-west-1-",
            "eu_west-1",
        ] {
            assert!(!valid_region(bad), "{bad}");
        }
    }
}
