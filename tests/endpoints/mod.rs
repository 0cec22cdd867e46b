//! Fake endpoints for gates, hooks and notifications: an axum server on
//! 127.0.0.1:0 that records every request and answers as the test says.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{Method, StatusCode, Uri};
use axum::response::IntoResponse;
use serde_json::Value;
use tokio::net::TcpListener;

#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    /// Path and query, as sent.
    pub uri: String,
    pub body: String,
}

impl Request {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub body: String,
    /// Answer only after this long (a slow or hung endpoint).
    pub delay: Duration,
}

impl Reply {
    pub fn new(status: u16, body: impl Into<String>) -> Reply {
        Reply {
            status,
            body: body.into(),
            delay: Duration::ZERO,
        }
    }

    pub fn after(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }
}

type Respond = dyn Fn(usize, &Request) -> Reply + Send + Sync;

#[derive(Clone)]
struct Shared {
    requests: Arc<Mutex<Vec<Request>>>,
    respond: Arc<Respond>,
}

pub struct Endpoint {
    pub addr: SocketAddr,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl Endpoint {
    /// `respond` gets the request's index (0 for the first) and the request.
    pub async fn start(
        respond: impl Fn(usize, &Request) -> Reply + Send + Sync + 'static,
    ) -> Endpoint {
        let shared = Shared {
            requests: Arc::new(Mutex::new(Vec::new())),
            respond: Arc::new(respond),
        };
        let requests = Arc::clone(&shared.requests);
        let app = Router::new().fallback(handle).with_state(shared);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Endpoint { addr, requests }
    }

    /// Always the same answer.
    pub async fn answering(status: u16, body: &str) -> Endpoint {
        let body = body.to_string();
        Endpoint::start(move |_, _| Reply::new(status, body.clone())).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }

    pub fn hits(&self) -> usize {
        self.requests.lock().unwrap().len()
    }
}

async fn handle(
    State(s): State<Shared>,
    method: Method,
    uri: Uri,
    body: Bytes,
) -> impl IntoResponse {
    let request = Request {
        method: method.to_string(),
        uri: uri.to_string(),
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    let index = {
        let mut all = s.requests.lock().unwrap();
        all.push(request.clone());
        all.len() - 1
    };
    let reply = (s.respond)(index, &request);
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    (StatusCode::from_u16(reply.status).unwrap(), reply.body)
}

/// A URL on a port nothing listens on: connections are refused.
pub async fn refused(path: &str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}{path}")
}

/// A Prometheus query answer with one scalar.
pub fn scalar(value: &str) -> String {
    format!(
        r#"{{"status":"success","data":{{"resultType":"scalar","result":[1700000000.0,"{value}"]}}}}"#
    )
}

/// A Prometheus query answer with no series.
pub fn empty_vector() -> String {
    r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#.to_string()
}
