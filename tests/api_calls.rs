//! Request counting sees every attempt the SDK makes, retries included,
//! against a scripted local HTTP server (the emulator cannot throttle).

use std::sync::{Arc, Mutex};

use aws_config::SdkConfig;
use aws_sdk_ecs::config::{Credentials, SharedCredentialsProvider};
use cutover::aws::calls::{ApiCalls, Outcome};
use cutover::aws::ecs::EcsAdapter;
use cutover::aws::{Endpoint, sdk_config};
use cutover::cloud::{Ecs, ErrorKind};
use cutover::rollout::ServiceState;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const THROTTLED: (u16, &str) = (
    400,
    r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#,
);
const UNAVAILABLE: (u16, &str) = (
    503,
    r#"{"__type":"ServerException","message":"Service unavailable"}"#,
);
const NO_SERVICES: (u16, &str) = (200, r#"{"services":[],"failures":[]}"#);

/// Answers each request with the next scripted response, then 500s.
struct Script {
    endpoint: String,
    served: Arc<Mutex<usize>>,
}

async fn serve(responses: Vec<(u16, &'static str)>) -> Script {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let served = Arc::new(Mutex::new(0));
    let count = served.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let next = {
                let mut n = count.lock().unwrap();
                *n += 1;
                responses
                    .get(*n - 1)
                    .copied()
                    .unwrap_or((500, r#"{"__type":"ServerException"}"#))
            };
            tokio::spawn(answer(stream, next));
        }
    });
    Script { endpoint, served }
}

/// Reads one request (headers, then the body by its length) and answers it,
/// closing the connection so the next attempt opens a new one.
async fn answer(mut stream: TcpStream, (status, body): (u16, &'static str)) {
    let mut request = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).await.unwrap_or(0);
        if n == 0 {
            return;
        }
        request.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&request);
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if request.len() >= end + 4 + length {
                break;
            }
        }
    }
    let response = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/x-amz-json-1.1\r\n\
         x-amzn-RequestId: req-1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// The production configuration (retries and timeouts), with fixed
/// credentials so nothing is looked up.
async fn config(endpoint: &str) -> SdkConfig {
    sdk_config(&Endpoint {
        region: Some("us-east-1".into()),
        url: Some(endpoint.to_string()),
    })
    .await
    .to_builder()
    .credentials_provider(SharedCredentialsProvider::new(Credentials::for_tests()))
    .build()
}

#[tokio::test]
async fn throttled_attempts_retried_by_the_sdk_are_counted() {
    let script = serve(vec![THROTTLED, THROTTLED, NO_SERVICES]).await;
    let calls = ApiCalls::new();
    let ecs = EcsAdapter::new(&config(&script.endpoint).await, &calls);
    let found = ecs
        .describe_services("prod", &["web".into()])
        .await
        .unwrap();
    assert_eq!(found, vec![("web".to_string(), ServiceState::Missing)]);
    assert_eq!(*script.served.lock().unwrap(), 3);
    assert_eq!(calls.count("ecs", "DescribeServices"), 3);
    assert_eq!(
        calls.count_outcome("ecs", "DescribeServices", Outcome::Throttled),
        2
    );
    assert_eq!(
        calls.count_outcome("ecs", "DescribeServices", Outcome::Ok),
        1
    );
    let stats = calls.snapshot();
    let (_, ok) = stats
        .iter()
        .find(|(k, _)| k.outcome == Outcome::Ok)
        .unwrap();
    assert_eq!(ok.count, 1);
    assert!(ok.latency_sum > std::time::Duration::ZERO);
}

#[tokio::test]
async fn failed_attempts_are_errors_and_the_call_fails_after_the_last() {
    let script = serve(vec![UNAVAILABLE, UNAVAILABLE, UNAVAILABLE]).await;
    let calls = ApiCalls::new();
    let ecs = EcsAdapter::new(&config(&script.endpoint).await, &calls);
    let e = ecs
        .describe_services("prod", &["web".into()])
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Transient, "{e}");
    assert_eq!(*script.served.lock().unwrap(), 3);
    assert_eq!(
        calls.count_outcome("ecs", "DescribeServices", Outcome::Error),
        3
    );
    assert_eq!(calls.total(), 3);
}
