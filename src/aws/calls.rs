//! Counts every AWS request attempt by service, operation and outcome.
//!
//! An SDK interceptor sees each attempt, including the ones the SDK's own
//! retry loop makes after a throttle or a 5xx: those attempts spend the
//! account's shared request budget just like the first one, so a wrapper
//! around `send()` would undercount exactly when counting matters most.

use std::collections::BTreeSet;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeTransmitInterceptorContextRef, FinalizerInterceptorContextRef, InterceptorContext,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::retries::ErrorKind as RetryErrorKind;
use aws_smithy_runtime_api::client::retries::classifiers::{
    ClassifyRetry, RetryAction, RetryReason,
};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};

pub use crate::cloud::calls::{ApiCalls, CallKey, CallStats, LATENCY_BUCKETS, Outcome};

/// The interceptor to add to any SDK client's config builder: it counts
/// every attempt into `calls`.
pub fn interceptor(calls: &ApiCalls) -> CountCalls {
    CountCalls {
        calls: calls.clone(),
    }
}

/// An ECS client whose attempts are counted in `calls`.
pub fn ecs_client(sdk: &SdkConfig, calls: &ApiCalls) -> aws_sdk_ecs::Client {
    let config = aws_sdk_ecs::config::Builder::from(sdk)
        .interceptor(interceptor(calls))
        .build();
    aws_sdk_ecs::Client::from_conf(config)
}

/// A DynamoDB client whose attempts are counted in `calls`.
pub fn dynamodb_client(sdk: &SdkConfig, calls: &ApiCalls) -> aws_sdk_dynamodb::Client {
    let config = aws_sdk_dynamodb::config::Builder::from(sdk)
        .interceptor(interceptor(calls))
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

/// A DynamoDB Streams client whose attempts are counted in `calls`.
pub fn dynamodbstreams_client(
    sdk: &SdkConfig,
    calls: &ApiCalls,
) -> aws_sdk_dynamodbstreams::Client {
    let config = aws_sdk_dynamodbstreams::config::Builder::from(sdk)
        .interceptor(interceptor(calls))
        .build();
    aws_sdk_dynamodbstreams::Client::from_conf(config)
}

/// A CloudWatch client whose attempts are counted in `calls`.
pub fn cloudwatch_client(sdk: &SdkConfig, calls: &ApiCalls) -> aws_sdk_cloudwatch::Client {
    let config = aws_sdk_cloudwatch::config::Builder::from(sdk)
        .interceptor(interceptor(calls))
        .build();
    aws_sdk_cloudwatch::Client::from_conf(config)
}

/// A CodeDeploy client whose attempts are counted in `calls`.
pub fn codedeploy_client(sdk: &SdkConfig, calls: &ApiCalls) -> aws_sdk_codedeploy::Client {
    let config = aws_sdk_codedeploy::config::Builder::from(sdk)
        .interceptor(interceptor(calls))
        .build();
    aws_sdk_codedeploy::Client::from_conf(config)
}

/// The interceptor behind [`ApiCalls::interceptor`].
#[derive(Clone, Debug)]
pub struct CountCalls {
    calls: ApiCalls,
}

/// When the current attempt started, kept in the operation's config bag
/// because one interceptor serves many requests at once.
#[derive(Clone, Copy, Debug)]
struct AttemptStarted(Instant);

impl Storable for AttemptStarted {
    type Storer = StoreReplace<Self>;
}

impl Intercept for CountCalls {
    fn name(&self) -> &'static str {
        "cutover::CountCalls"
    }

    fn read_before_attempt(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        cfg.interceptor_state()
            .store_put(AttemptStarted(Instant::now()));
        Ok(())
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let latency = cfg
            .load::<AttemptStarted>()
            .map_or(Duration::ZERO, |s| s.0.elapsed());
        let (service, operation) = match cfg.load::<Metadata>() {
            Some(m) => (service_label(m.service()), intern(m.name())),
            None => ("unknown", "unknown"),
        };
        let outcome = outcome(context.inner(), runtime_components);
        self.calls.record(
            CallKey {
                service,
                operation,
                outcome,
            },
            latency,
        );
        Ok(())
    }
}

fn outcome(context: &InterceptorContext, runtime_components: &RuntimeComponents) -> Outcome {
    if let Some(Ok(_)) = context.output_or_error() {
        return Outcome::Ok;
    }
    let too_many = context
        .response()
        .is_some_and(|r| r.status().as_u16() == 429);
    if too_many
        || retry_verdict(context, runtime_components) == Some(RetryErrorKind::ThrottlingError)
    {
        Outcome::Throttled
    } else {
        Outcome::Error
    }
}

/// What the operation's own retry classifiers make of the attempt. They are
/// typed with the operation's error, which an interceptor shared by every
/// operation cannot name, and they know each service's throttling codes.
/// Runs them the way the SDK's retry strategy does: in priority order, a
/// later opinion replacing an earlier one, a refusal ending the run.
fn retry_verdict(
    context: &InterceptorContext,
    runtime_components: &RuntimeComponents,
) -> Option<RetryErrorKind> {
    let mut verdict = RetryAction::NoActionIndicated;
    for classifier in runtime_components.retry_classifiers() {
        let next = classifier.classify_retry_v2(context, &verdict);
        if next == RetryAction::NoActionIndicated {
            continue;
        }
        verdict = next;
        if verdict == RetryAction::RetryForbidden {
            break;
        }
    }
    match verdict {
        RetryAction::RetryIndicated(RetryReason::RetryableError { kind, .. }) => Some(kind),
        _ => None,
    }
}

/// The IAM prefix of a service, from the name the SDK gives it.
fn service_label(sdk_name: &str) -> &'static str {
    match sdk_name {
        "ECS" => "ecs",
        "Elastic Load Balancing v2" | "Elastic Load Balancing" => "elasticloadbalancing",
        // Streams actions are `dynamodb:GetRecords` etc. in IAM.
        "DynamoDB" | "DynamoDB Streams" => "dynamodb",
        "CloudWatch" => "cloudwatch",
        "CodeDeploy" => "codedeploy",
        "STS" => "sts",
        other => intern(&other.to_ascii_lowercase().replace(' ', "-")),
    }
}

/// Operation names as `&'static str` labels. The SDK only lends them out;
/// each distinct name is leaked once, and there are only as many as the
/// linked SDKs have operations.
fn intern(name: &str) -> &'static str {
    static NAMES: Mutex<BTreeSet<&'static str>> = Mutex::new(BTreeSet::new());
    let mut names = NAMES.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(known) = names.get(name) {
        return known;
    }
    let leaked: &'static str = Box::leak(name.to_string().into_boxed_str());
    names.insert(leaked);
    leaked
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(service: &'static str, operation: &'static str, outcome: Outcome) -> CallKey {
        CallKey {
            service,
            operation,
            outcome,
        }
    }

    #[test]
    fn counts_by_operation_and_outcome() {
        let calls = ApiCalls::new();
        let other = calls.clone();
        calls.record(
            key("ecs", "DescribeServices", Outcome::Ok),
            Duration::from_millis(3),
        );
        other.record(
            key("ecs", "DescribeServices", Outcome::Throttled),
            Duration::from_millis(30),
        );
        calls.record(
            key("dynamodb", "Scan", Outcome::Error),
            Duration::from_secs(20),
        );
        assert_eq!(calls.count("ecs", "DescribeServices"), 2);
        assert_eq!(
            calls.count_outcome("ecs", "DescribeServices", Outcome::Throttled),
            1
        );
        assert_eq!(calls.count("ecs", "CreateTaskSet"), 0);
        assert_eq!(calls.total(), 3);
        assert_eq!(calls.snapshot().len(), 3);
    }

    #[test]
    fn latency_buckets_are_cumulative() {
        let calls = ApiCalls::new();
        let k = key("ecs", "DescribeServices", Outcome::Ok);
        calls.record(k, Duration::from_millis(5));
        calls.record(k, Duration::from_millis(300));
        calls.record(k, Duration::from_secs(60));
        let stats = calls.snapshot()[&k];
        assert_eq!(stats.count, 3);
        assert_eq!(stats.latency_sum, Duration::from_millis(60_305));
        assert_eq!(stats.latency_buckets[0], 1, "5ms is within the 5ms bucket");
        assert_eq!(stats.latency_buckets[5], 1, "300ms is over 250ms");
        assert_eq!(stats.latency_buckets[6], 2);
        assert_eq!(stats.latency_buckets[LATENCY_BUCKETS.len() - 1], 2);
    }

    #[test]
    fn services_are_named_by_iam_prefix() {
        assert_eq!(service_label("ECS"), "ecs");
        assert_eq!(
            service_label("Elastic Load Balancing v2"),
            "elasticloadbalancing"
        );
        assert_eq!(service_label("DynamoDB Streams"), "dynamodb");
        assert_eq!(service_label("Resource Groups"), "resource-groups");
    }

    #[test]
    fn interned_names_are_shared() {
        let a = intern(&String::from("DescribeServices"));
        let b = intern(&String::from("DescribeServices"));
        assert!(std::ptr::eq(a, b));
    }
}
