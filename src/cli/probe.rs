//! `cutover probe URL`: a container health check that needs no curl in the
//! image. Exit 0 when the URL answers 2xx within the timeout, 1 otherwise.

use std::process::ExitCode;
use std::time::Duration;

#[derive(clap::Args, Debug)]
pub struct ProbeArgs {
    /// What to ask, e.g. http://127.0.0.1:8080/healthz.
    pub url: String,
    /// Give up after this long (e.g. 3s, 500ms).
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
}

pub fn run(args: ProbeArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    Ok(runtime.block_on(probe(&args)))
}

async fn probe(args: &ProbeArgs) -> ExitCode {
    let client = match reqwest::Client::builder().timeout(args.timeout).build() {
        Ok(client) => client,
        Err(e) => {
            eprintln!("probe: cannot build an HTTP client: {e}");
            return ExitCode::FAILURE;
        }
    };
    match client.get(&args.url).send().await {
        Ok(answer) if answer.status().is_success() => ExitCode::SUCCESS,
        Ok(answer) => {
            eprintln!("probe: {} answered {}", args.url, answer.status());
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("probe: {}: {e}", args.url);
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// One connection, answered with `status`.
    async fn server(status: &'static str) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let _ = socket.read(&mut buf).await;
            let reply =
                format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            let _ = socket.write_all(reply.as_bytes()).await;
        });
        format!("http://{addr}/healthz")
    }

    fn args(url: String) -> ProbeArgs {
        ProbeArgs {
            url,
            timeout: Duration::from_secs(2),
        }
    }

    #[tokio::test]
    async fn a_2xx_answer_is_healthy_and_anything_else_is_not() {
        assert_eq!(
            probe(&args(server("200 OK").await)).await,
            ExitCode::SUCCESS
        );
        let unavailable = server("503 Service Unavailable").await;
        assert_eq!(probe(&args(unavailable)).await, ExitCode::FAILURE);
    }

    #[tokio::test]
    async fn nobody_listening_is_unhealthy() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/healthz", listener.local_addr().unwrap());
        drop(listener);
        assert_eq!(probe(&args(url)).await, ExitCode::FAILURE);
    }
}
