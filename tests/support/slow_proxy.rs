//! A plain HTTP proxy in front of the emulator that holds back one AWS
//! operation (named by its `X-Amz-Target`, e.g.
//! `DynamoDBStreams_20120810.GetShardIterator`) for a while before passing
//! it on, as a slow network or a busy endpoint would: the emulator answers
//! it as of when it finally arrives. Everything else passes through
//! untouched, so the SDK, the adapters and the emulator stay real.

use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use tokio::net::TcpListener;

#[derive(Clone)]
struct Upstream {
    url: String,
    target: &'static str,
    delay: Duration,
    client: reqwest::Client,
}

/// Starts the proxy in front of `emulator` (its endpoint URL); returns the
/// proxy's endpoint URL.
pub async fn start(emulator: String, target: &'static str, delay: Duration) -> String {
    let upstream = Upstream {
        url: emulator,
        target,
        delay,
        client: reqwest::Client::new(),
    };
    let app = Router::new().fallback(forward).with_state(upstream);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

async fn forward(
    State(up): State<Upstream>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let slow = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t == up.target);
    if slow {
        tokio::time::sleep(up.delay).await;
    }
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut call = up.client.request(method, format!("{}{path}", up.url));
    for (name, value) in &headers {
        if name != "host" && name != "content-length" {
            call = call.header(name, value);
        }
    }
    let answer = call.body(body).send().await.unwrap();
    let mut response = Response::builder().status(answer.status().as_u16());
    for (name, value) in answer.headers() {
        if name != "content-length" && name != "transfer-encoding" {
            response = response.header(name.as_str(), value.as_bytes());
        }
    }
    response
        .body(Body::from(answer.bytes().await.unwrap()))
        .unwrap()
}
