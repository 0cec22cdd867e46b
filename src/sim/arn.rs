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
