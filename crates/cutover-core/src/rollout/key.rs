//! The identity of a managed service: `<cluster>/<service>`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServiceKey {
    pub cluster: String,
    pub service: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("service key {given:?} is not of the form <cluster>/<service>: {why}")]
pub struct KeyError {
    pub given: String,
    pub why: &'static str,
}

impl ServiceKey {
    pub fn new(cluster: impl Into<String>, service: impl Into<String>) -> Self {
        ServiceKey {
            cluster: cluster.into(),
            service: service.into(),
        }
    }
}

/// ECS names: 1-255 letters, digits, hyphens and underscores.
fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 255
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

impl FromStr for ServiceKey {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self, KeyError> {
        let err = |why| KeyError {
            given: s.to_string(),
            why,
        };
        let (cluster, service) = s.split_once('/').ok_or_else(|| err("there is no '/'"))?;
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
        Ok(ServiceKey::new(cluster, service))
    }
}

impl fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.cluster, self.service)
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
        assert_eq!(k.to_string(), "prod/checkout-api");
    }

    #[test]
    fn rejects_malformed_keys_with_the_reason() {
        for (bad, why) in [
            ("checkout", "no '/'"),
            ("a/b/c", "more than one"),
            ("/svc", "cluster name"),
            ("prod/", "service name"),
            ("prod/check out", "service name"),
        ] {
            let e = bad.parse::<ServiceKey>().unwrap_err();
            assert!(e.to_string().contains(why), "{bad}: {e}");
        }
    }
}
