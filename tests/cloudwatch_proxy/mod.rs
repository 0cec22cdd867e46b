//! The Rust SDK speaks only the Smithy RPC v2 CBOR protocol to CloudWatch;
//! the emulator (moto) serves CloudWatch over Query and AWS JSON 1.0 only.
//! This proxy sits between them in tests: each CBOR request becomes the
//! same JSON 1.0 request, and each JSON answer the same CBOR answer, so the
//! SDK, the adapter and the emulator's alarm semantics are all real.
#![allow(dead_code)]

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use ciborium::Value as Cbor;
use serde_json::Value as Json;
use tokio::net::TcpListener;

const SERVICE: &str = "GraniteServiceVersion20100801";

#[derive(Clone)]
struct Upstream {
    url: String,
    client: reqwest::Client,
}

/// Starts the proxy in front of `emulator` (its endpoint URL); returns the
/// proxy's endpoint URL.
pub async fn start(emulator: String) -> String {
    let upstream = Upstream {
        url: emulator,
        client: reqwest::Client::new(),
    };
    let app = Router::new()
        .route(
            &format!("/service/{SERVICE}/operation/{{op}}"),
            post(forward),
        )
        .with_state(upstream);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

async fn forward(
    State(up): State<Upstream>,
    Path(op): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request = if body.is_empty() {
        Json::Object(Default::default())
    } else {
        let value: Cbor = ciborium::de::from_reader(&body[..]).unwrap();
        to_json(value)
    };
    let mut call = up
        .client
        .post(&up.url)
        .header("X-Amz-Target", format!("{SERVICE}.{op}"))
        .header(header::CONTENT_TYPE, "application/x-amz-json-1.0")
        .body(request.to_string());
    // The emulator reads the account and region from the credential scope.
    if let Some(auth) = headers.get(header::AUTHORIZATION) {
        call = call.header(header::AUTHORIZATION, auth.clone());
    }
    let answer = call.send().await.unwrap();
    let status = StatusCode::from_u16(answer.status().as_u16()).unwrap();
    let text = answer.text().await.unwrap();
    let json: Json = if text.trim().is_empty() {
        Json::Object(Default::default())
    } else {
        serde_json::from_str(&text).unwrap()
    };
    let mut out = Vec::new();
    ciborium::ser::into_writer(&to_cbor(json, ""), &mut out).unwrap();
    (
        status,
        [
            (header::CONTENT_TYPE, "application/cbor"),
            (
                header::HeaderName::from_static("smithy-protocol"),
                "rpc-v2-cbor",
            ),
        ],
        out,
    )
        .into_response()
}

fn to_json(v: Cbor) -> Json {
    match v {
        Cbor::Null => Json::Null,
        Cbor::Bool(b) => Json::Bool(b),
        Cbor::Integer(i) => Json::from(i64::try_from(i128::from(i)).unwrap()),
        Cbor::Float(f) => Json::from(f),
        Cbor::Text(s) => Json::String(s),
        Cbor::Array(a) => Json::Array(a.into_iter().map(to_json).collect()),
        Cbor::Map(m) => Json::Object(
            m.into_iter()
                .map(|(k, v)| (k.into_text().unwrap(), to_json(v)))
                .collect(),
        ),
        // Timestamps travel as tag 1 (epoch seconds), as in JSON 1.0.
        Cbor::Tag(1, inner) => to_json(*inner),
        other => panic!("no JSON 1.0 form for {other:?}"),
    }
}

/// `key` is the member this value belongs to: JSON 1.0 sends timestamps as
/// bare epoch seconds, CBOR needs them tagged.
fn to_cbor(v: Json, key: &str) -> Cbor {
    match v {
        Json::Null => Cbor::Null,
        Json::Bool(b) => Cbor::Bool(b),
        Json::Number(n) if key.ends_with("Timestamp") => {
            Cbor::Tag(1, Box::new(Cbor::Float(n.as_f64().unwrap())))
        }
        Json::Number(n) => match n.as_i64() {
            Some(i) => Cbor::Integer(i.into()),
            None => Cbor::Float(n.as_f64().unwrap()),
        },
        Json::String(s) => Cbor::Text(s),
        Json::Array(a) => Cbor::Array(a.into_iter().map(|v| to_cbor(v, key)).collect()),
        Json::Object(m) => Cbor::Map(
            m.into_iter()
                .map(|(k, v)| {
                    let v = to_cbor(v, &k);
                    (Cbor::Text(k), v)
                })
                .collect(),
        ),
    }
}
