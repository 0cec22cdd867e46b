//! ARNs shaped like AWS's, so record validation and ARN parsing in the
//! controller see what they will see in production.

use crate::rollout::Scope;

pub const REGION: &str = "us-east-1";
pub const ACCOUNT: &str = "123456789012";

/// The region and account a scope's resources are in: home is
/// [`REGION`] in [`ACCOUNT`], another region is in [`ACCOUNT`].
pub fn place(scope: &Scope) -> (&str, &str) {
    match scope {
        Scope::Home => (REGION, ACCOUNT),
        Scope::Region(region) => (region, ACCOUNT),
        Scope::Account { region, account } => (region, account),
    }
}

/// The region and account an ARN names (its fourth and fifth fields), or
/// home's for anything else.
pub fn place_of(arn: &str) -> (&str, &str) {
    crate::rollout::account::arn_region_account(arn).unwrap_or((REGION, ACCOUNT))
}

pub fn task_definition_in(scope: &Scope, family_revision: &str) -> String {
    let (region, account) = place(scope);
    format!("arn:aws:ecs:{region}:{account}:task-definition/{family_revision}")
}

pub fn task_set_in(scope: &Scope, cluster: &str, service: &str, id: &str) -> String {
    let (region, account) = place(scope);
    format!("arn:aws:ecs:{region}:{account}:task-set/{cluster}/{service}/{id}")
}

/// A service deployment's ARN, as UpdateService reports it in the
/// service's `currentServiceDeployment`
/// (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ServiceDeployment.html).
pub fn service_deployment_in(scope: &Scope, cluster: &str, service: &str, id: &str) -> String {
    let (region, account) = place(scope);
    format!("arn:aws:ecs:{region}:{account}:service-deployment/{cluster}/{service}/{id}")
}

/// The scope an ARN's region and account are in, as a key would name it.
pub fn scope_of(arn: &str) -> Scope {
    match place_of(arn) {
        (REGION, ACCOUNT) => Scope::Home,
        (region, ACCOUNT) => Scope::Region(region.to_string()),
        (region, account) => Scope::Account {
            region: region.to_string(),
            account: account.to_string(),
        },
    }
}

/// The cluster and service of a service deployment's ARN.
pub fn service_deployment_key(arn: &str) -> Option<(String, String)> {
    let (_, rest) = arn.split_once(":service-deployment/")?;
    let mut parts = rest.split('/');
    let (cluster, service, id) = (parts.next()?, parts.next()?, parts.next()?);
    let whole = parts.next().is_none() && ![cluster, service, id].contains(&"");
    whole.then(|| (cluster.to_string(), service.to_string()))
}

/// A task's ARN; `n` is the world's task number.
pub fn task_in(scope: &Scope, cluster: &str, n: u64) -> String {
    let (region, account) = place(scope);
    format!("arn:aws:ecs:{region}:{account}:task/{cluster}/{n:032x}")
}

pub fn load_balancer_in(scope: &Scope, name: &str, id: &str) -> String {
    let (region, account) = place(scope);
    format!("arn:aws:elasticloadbalancing:{region}:{account}:loadbalancer/app/{name}/{id}")
}

pub fn listener_in(scope: &Scope, lb_name: &str, lb_id: &str, id: &str) -> String {
    let (region, account) = place(scope);
    format!("arn:aws:elasticloadbalancing:{region}:{account}:listener/app/{lb_name}/{lb_id}/{id}")
}

pub fn listener_rule_in(
    scope: &Scope,
    lb_name: &str,
    lb_id: &str,
    listener_id: &str,
    id: &str,
) -> String {
    let (region, account) = place(scope);
    format!(
        "arn:aws:elasticloadbalancing:{region}:{account}:listener-rule/app/{lb_name}/{lb_id}/{listener_id}/{id}"
    )
}

pub fn target_group_in(scope: &Scope, name: &str, id: &str) -> String {
    let (region, account) = place(scope);
    format!("arn:aws:elasticloadbalancing:{region}:{account}:targetgroup/{name}/{id}")
}

/// Load balancer and target group names are limited to 32 characters.
pub fn elb_name(base: &str, suffix: &str) -> String {
    let room = 32usize.saturating_sub(suffix.len());
    let base: String = base.chars().take(room).collect();
    format!("{base}{suffix}")
}

/// A short, unambiguous name for logs: the target group or load balancer
/// name, or the task set id. (The last path segment alone would name every
/// listener `app`.)
pub fn label(arn: &str) -> String {
    let Some((_, resource)) = arn.rsplit_once(':') else {
        return arn.to_string();
    };
    let parts: Vec<&str> = resource.split('/').collect();
    let short = |id: &str| id.chars().take(6).collect::<String>();
    match parts.as_slice() {
        ["targetgroup", name, ..] => (*name).to_string(),
        ["listener", "app", lb, _, id] => format!("listener {lb}/{}", short(id)),
        ["listener-rule", "app", lb, _, _, id] => format!("rule {lb}/{}", short(id)),
        ["task-set", _, _, rest @ ..] => rest.join("/"),
        _ => resource.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_name_what_people_recognise() {
        assert_eq!(
            label(&target_group_in(&Scope::Home, "web-blue", "0123")),
            "web-blue"
        );
        assert_eq!(
            label(&listener_in(&Scope::Home, "web", "aa", "bbbbbbbbbb")),
            "listener web/bbbbbb"
        );
        assert_eq!(
            label(&listener_rule_in(&Scope::Home, "web", "aa", "bb", "cc")),
            "rule web/cc"
        );
        assert_eq!(
            label(&task_set_in(&Scope::Home, "prod", "web", "ecs-svc/42")),
            "ecs-svc/42"
        );
    }
}
