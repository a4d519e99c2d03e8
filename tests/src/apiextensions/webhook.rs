//! The real server's delegated authentication and authorization: a loopback HTTP service that
//! answers every `TokenReview` with an authenticated cluster admin and every
//! `SubjectAccessReview` with `allowed: true`. The stand-in in front of the real server has
//! already authenticated and authorized each request it forwards (as kube-apiserver's filters
//! do before its apiextensions delegate sees a request).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use http::{Method, Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

/// The bearer token clients of the real server send (any token passes; this one is named).
pub const ADMIN_TOKEN: &str = "real-apiserver-admin";

/// A running webhook; dropping it stops it.
#[derive(Debug)]
pub struct Webhook {
    address: SocketAddr,
    reviews: Arc<AtomicU64>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Webhook {
    /// Starts the webhook on a free loopback port, on a runtime of its own.
    pub fn start() -> std::io::Result<Webhook> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let address = listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("authz-webhook")
            .enable_all()
            .build()?;
        let reviews = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&reviews);
        runtime.spawn(async move {
            let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                return;
            };
            while let Ok((stream, _)) = listener.accept().await {
                let counter = Arc::clone(&counter);
                tokio::spawn(async move {
                    let service = service_fn(move |request| {
                        let counter = Arc::clone(&counter);
                        async move { Ok::<_, std::convert::Infallible>(answer(request, &counter).await) }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Webhook {
            address,
            reviews,
            runtime: Some(runtime),
        })
    }

    /// A kubeconfig that points the server's webhook clients here.
    pub fn kubeconfig(&self) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: webhook\n  cluster:\n    server: http://{}\n\
             contexts:\n- name: webhook\n  context:\n    cluster: webhook\n    user: server\n\
             current-context: webhook\nusers:\n- name: server\n  user: {{}}\n",
            self.address
        )
    }

    /// How many reviews it has answered.
    pub fn reviews(&self) -> u64 {
        self.reviews.load(Ordering::Relaxed)
    }
}

impl Drop for Webhook {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

async fn answer(request: Request<Incoming>, reviews: &AtomicU64) -> Response<Full<Bytes>> {
    let method = request.method().clone();
    let body = request
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    if method != Method::POST {
        // The server's informers of core kinds (Services, FlowSchemas) ask here too; there is
        // no core API behind this webhook.
        return respond(
            501,
            &json!({"kind": "Status", "status": "Failure", "code": 501}),
        );
    }
    let Ok(mut review) = serde_json::from_slice::<Value>(&body) else {
        return respond(
            400,
            &json!({"kind": "Status", "status": "Failure", "code": 400}),
        );
    };
    reviews.fetch_add(1, Ordering::Relaxed);
    review["status"] = match review.get("kind").and_then(Value::as_str) {
        Some("TokenReview") => json!({
            "authenticated": true,
            "user": {"username": "admin", "uid": "admin",
                     "groups": ["system:masters", "system:authenticated"]},
        }),
        _ => json!({"allowed": true, "reason": "the stand-in in front authorized it"}),
    };
    respond(201, &review)
}

fn respond(code: u16, body: &Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(code)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}
