//! ARNs shaped like AWS's, so record validation and ARN parsing in the
//! controller see what they will see in production.

pub const REGION: &str = "us-east-1";
pub const ACCOUNT: &str = "123456789012";

pub fn task_definition(family_revision: &str) -> String {
    format!("arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/{family_revision}")
}

pub fn task_set(cluster: &str, service: &str, id: &str) -> String {
    format!("arn:aws:ecs:{REGION}:{ACCOUNT}:task-set/{cluster}/{service}/{id}")
}

/// A service deployment's ARN, as UpdateService reports it in the
/// service's `currentServiceDeployment`
/// (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ServiceDeployment.html).
pub fn service_deployment(cluster: &str, service: &str, id: &str) -> String {
    format!("arn:aws:ecs:{REGION}:{ACCOUNT}:service-deployment/{cluster}/{service}/{id}")
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
pub fn task(cluster: &str, n: u64) -> String {
    format!("arn:aws:ecs:{REGION}:{ACCOUNT}:task/{cluster}/{n:032x}")
}

pub fn load_balancer(name: &str, id: &str) -> String {
    format!("arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:loadbalancer/app/{name}/{id}")
}

pub fn listener(lb_name: &str, lb_id: &str, id: &str) -> String {
    format!("arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:listener/app/{lb_name}/{lb_id}/{id}")
}

pub fn listener_rule(lb_name: &str, lb_id: &str, listener_id: &str, id: &str) -> String {
    format!(
        "arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:listener-rule/app/{lb_name}/{lb_id}/{listener_id}/{id}"
    )
}

pub fn target_group(name: &str, id: &str) -> String {
    format!("arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:targetgroup/{name}/{id}")
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
        assert_eq!(label(&target_group("web-blue", "0123")), "web-blue");
        assert_eq!(
            label(&listener("web", "aa", "bbbbbbbbbb")),
            "listener web/bbbbbb"
        );
        assert_eq!(
            label(&listener_rule("web", "aa", "bb", "cc")),
            "rule web/cc"
        );
        assert_eq!(label(&task_set("prod", "web", "ecs-svc/42")), "ecs-svc/42");
    }
}
