//! Where a record's service lives: the `region` and `role_arn` fields,
//! checked against the key's scope (see [`super::key`]). The key is the
//! source of truth, since it alone keeps two services of the same name in
//! two regions apart; the fields say it again, or name the role to assume.

use super::key::{Scope, ServiceKey, valid_account};
use super::quote::quote;

/// The ARN partition of a region: GovCloud and China have their own.
pub fn partition(region: &str) -> &'static str {
    if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else if region.starts_with("cn-") {
        "aws-cn"
    } else {
        "aws"
    }
}

/// The account of an IAM role ARN (`arn:<partition>:iam::<account>:role/<path/name>`),
/// or why it is not one.
pub fn role_account(arn: &str) -> Result<(&str, &str), String> {
    let form = "is not an IAM role ARN: write arn:aws:iam::<12-digit account>:role/<name>";
    let mut parts = arn.splitn(6, ':');
    let (Some("arn"), Some(partition), Some("iam"), Some(""), Some(account), Some(resource)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(format!("{} {form}", quote(arn)));
    };
    let name = resource.strip_prefix("role/").unwrap_or_default();
    let role_chars = |c: char| c.is_ascii_alphanumeric() || "+=,.@_-/".contains(c);
    if !partition.starts_with("aws")
        || !valid_account(account)
        || name.is_empty()
        || name.ends_with('/')
        || name.len() > 576
        || !name.chars().all(role_chars)
    {
        return Err(format!("{} {form}", quote(arn)));
    }
    Ok((partition, account))
}

/// The region and account an ELB or ECS ARN names: its fourth and fifth
/// fields.
pub fn arn_region_account(arn: &str) -> Option<(&str, &str)> {
    let mut parts = arn.splitn(6, ':');
    let (_, _, _, region, account) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    Some((region, account))
}

/// The problems of `region`, `role_arn` and the load balancer ARNs against
/// the key's scope, each as (field, message).
pub fn check(
    key: &ServiceKey,
    region: Option<&str>,
    role_arn: Option<&str>,
    arns: &[(&str, &str)],
) -> Vec<(String, String)> {
    let mut problems = Vec::new();
    let mut bad = |field: &str, message: String| problems.push((field.to_string(), message));
    let names = format!("{}/{}", key.cluster, key.service);
    if let Some(region) = region {
        match key.scope.region() {
            Some(r) if r == region => {}
            Some(r) => bad(
                "region",
                format!(
                    "{} is not the region the key names ({}): the key decides where the service is; \
                     write the key {} or remove `region`",
                    quote(region),
                    quote(r),
                    quote(&format!("{region}:{}{names}", account_prefix(&key.scope))),
                ),
            ),
            None => bad(
                "region",
                format!(
                    "is given, and the key has no region, which means the controller's own: \
                     write the key {} for a service in {}, or remove `region`",
                    quote(&format!("{region}:{names}")),
                    quote(region),
                ),
            ),
        }
    }
    if let Some(role) = role_arn {
        match role_account(role) {
            Err(m) => bad("role_arn", m),
            Ok((role_partition, account)) => match &key.scope {
                Scope::Account {
                    account: key_account,
                    region,
                } => {
                    if account != key_account {
                        bad(
                            "role_arn",
                            format!(
                                "names account {account}, and the key (`service`) names account {key_account}: \
                                 the role must be in the service's account"
                            ),
                        );
                    } else if role_partition != partition(region) {
                        bad(
                            "role_arn",
                            format!(
                                "is in partition {role_partition}, and region {region} is in {}: write arn:{}:iam::…",
                                partition(region),
                                partition(region)
                            ),
                        );
                    }
                }
                scope => bad(
                    "role_arn",
                    format!(
                        "names account {account}, and the key (`service`) names no account, which means \
                         the controller's own: write the key {}",
                        quote(&format!(
                            "{}:{account}:{names}",
                            scope.region().unwrap_or("<region>")
                        ))
                    ),
                ),
            },
        }
    }
    if let Some(key_region) = key.scope.region() {
        for (field, arn) in arns {
            let Some((arn_region, arn_account)) = arn_region_account(arn) else {
                continue;
            };
            if arn_region != key_region {
                bad(
                    field,
                    format!(
                        "is in region {}, and the key names {key_region}: a service and its load balancer share a region",
                        quote(arn_region)
                    ),
                );
            } else if let Some(key_account) = key.scope.account()
                && arn_account != key_account
            {
                bad(
                    field,
                    format!(
                        "is in account {}, and the key names {key_account}: a service and its load balancer share an account",
                        quote(arn_account)
                    ),
                );
            }
        }
    }
    problems
}

fn account_prefix(scope: &Scope) -> String {
    scope.account().map(|a| format!("{a}:")).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> ServiceKey {
        s.parse().unwrap()
    }

    const TG: &str = "arn:aws:elasticloadbalancing:eu-west-1:210987654321:targetgroup/web-blue/1";

    #[test]
    fn a_matching_region_role_and_arns_pass() {
        let k = key("eu-west-1:210987654321:prod/web");
        let p = check(
            &k,
            Some("eu-west-1"),
            Some("arn:aws:iam::210987654321:role/deploy/cutover-target"),
            &[("target_groups[0]", TG)],
        );
        assert!(p.is_empty(), "{p:?}");
    }

    #[test]
    fn a_role_in_another_account_than_the_key_names_both() {
        let k = key("eu-west-1:210987654321:prod/web");
        let p = check(&k, None, Some("arn:aws:iam::111122223333:role/x"), &[]);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].0, "role_arn");
        assert!(
            p[0].1.contains("111122223333") && p[0].1.contains("210987654321"),
            "{}",
            p[0].1
        );
    }

    #[test]
    fn a_role_on_a_key_without_account_says_how_to_write_the_key() {
        let p = check(
            &key("prod/web"),
            None,
            Some("arn:aws:iam::210987654321:role/x"),
            &[],
        );
        assert!(
            p[0].1.contains("<region>:210987654321:prod/web"),
            "{}",
            p[0].1
        );
        let p = check(
            &key("eu-west-1:prod/web"),
            None,
            Some("arn:aws:iam::210987654321:role/x"),
            &[],
        );
        assert!(
            p[0].1.contains("eu-west-1:210987654321:prod/web"),
            "{}",
            p[0].1
        );
    }

    #[test]
    fn a_region_other_than_the_keys_is_refused() {
        let p = check(&key("eu-west-1:prod/web"), Some("us-east-1"), None, &[]);
        assert_eq!(p[0].0, "region");
        assert!(p[0].1.contains("us-east-1:prod/web"), "{}", p[0].1);
        let p = check(&key("prod/web"), Some("us-east-1"), None, &[]);
        assert!(p[0].1.contains("us-east-1:prod/web"), "{}", p[0].1);
    }

    #[test]
    fn malformed_role_arns_are_refused() {
        let k = key("eu-west-1:210987654321:prod/web");
        for bad in [
            "cutover-target",
            "arn:aws:iam::21098765432:role/x",
            "arn:aws:iam::210987654321:user/x",
            "arn:aws:iam::210987654321:role/",
            "arn:aws:sts::210987654321:role/x",
            "arn:aws:iam::210987654321:role/a b",
        ] {
            let p = check(&k, None, Some(bad), &[]);
            assert!(p[0].1.contains("is not an IAM role ARN"), "{bad}: {p:?}");
        }
        let p = check(&k, None, Some("arn:aws-cn:iam::210987654321:role/x"), &[]);
        assert!(p[0].1.contains("partition"), "{p:?}");
    }

    #[test]
    fn load_balancer_arns_must_be_where_the_key_says() {
        let k = key("us-east-1:210987654321:prod/web");
        let p = check(&k, None, None, &[("target_groups[0]", TG)]);
        assert!(p[0].1.contains("region"), "{p:?}");
        let k = key("eu-west-1:111122223333:prod/web");
        let p = check(&k, None, None, &[("target_groups[0]", TG)]);
        assert!(p[0].1.contains("account"), "{p:?}");
        // Home keys: the controller's region and account are not known here.
        assert!(check(&key("prod/web"), None, None, &[("target_groups[0]", TG)]).is_empty());
    }
}
