//! `pods/portforward` over WebSocket, as the API server and kubelet serve it together
//! (`kubectl port-forward`, kube-rs `Api::portforward`): subprotocol `v4.channel.k8s.io`, two
//! channels per requested port (data `2i`, error `2i+1`), each opened by a frame carrying the
//! port (little-endian u16), then the data in binary frames prefixed by their channel.
//!
//! Every pod on this machine shares its loopback (the process kubelet runs containers as local
//! processes), so the kubelet's half is a TCP connection to `127.0.0.1:PORT`. The caller needs
//! `create` on `pods/portforward`, as on a real cluster.

use std::sync::Arc;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use http::{Method, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;

use super::auth;
use super::errors::ApiError;
use super::routes::{Body, Shared, full, json_response};
use super::write;

/// The subprotocol served (kube-rs and kubectl offer it among others).
const PROTOCOL: &str = "v4.channel.k8s.io";

/// A port-forward request: which pod, which ports.
#[derive(Debug, Clone)]
pub struct Target {
    namespace: String,
    pod: String,
    ports: Vec<u16>,
}

/// The port-forward request this is, if it is one (a WebSocket upgrade of
/// `/api/v1/namespaces/NS/pods/NAME/portforward?ports=...`).
pub fn target_of(request: &Request<Incoming>) -> Option<Target> {
    let upgrade = request
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    let segments: Vec<&str> = request.uri().path().split('/').collect();
    let [
        "",
        "api",
        "v1",
        "namespaces",
        namespace,
        "pods",
        pod,
        "portforward",
    ] = segments.as_slice()
    else {
        return None;
    };
    if !upgrade || request.method() != Method::GET {
        return None;
    }
    let ports = url::form_urlencoded::parse(request.uri().query().unwrap_or("").as_bytes())
        .filter(|(key, _)| key == "ports")
        .flat_map(|(_, value)| {
            value
                .split(',')
                .filter_map(|p| p.trim().parse::<u16>().ok())
                .collect::<Vec<_>>()
        })
        .collect();
    Some(Target {
        namespace: namespace.to_string(),
        pod: pod.to_string(),
        ports,
    })
}

/// Authorizes the request, answers 101 and forwards each port over the upgraded connection.
pub fn serve(shared: &Arc<Shared>, request: Request<Incoming>, target: Target) -> Response<Body> {
    match accept(shared, &request, &target) {
        Ok(response) => {
            tokio::spawn(async move {
                if let Ok(upgraded) = hyper::upgrade::on(request).await {
                    let socket = WebSocketStream::from_raw_socket(
                        TokioIo::new(upgraded),
                        Role::Server,
                        None,
                    )
                    .await;
                    forward(socket, &target.ports).await;
                }
            });
            response
        }
        Err(error) => json_response(error.code, &error.status(), &[]),
    }
}

fn accept(
    shared: &Shared,
    request: &Request<Incoming>,
    target: &Target,
) -> Result<Response<Body>, ApiError> {
    let store = shared.lock();
    let user = auth::authenticate(&store, request.headers())?;
    let pods = store
        .registry
        .find("", "v1", "pods")
        .ok_or_else(ApiError::no_route)?
        .clone();
    // The real server authorizes a port-forward as `create` of the subresource.
    let attributes = auth::resource_attributes(
        &Method::POST,
        &pods,
        Some(&target.namespace),
        Some(&target.pod),
        Some("portforward"),
        false,
        "",
    );
    shared.authorize_audited(&store, &user, &attributes)?;
    if store
        .get(&write::key_of(&pods, &target.namespace, &target.pod))
        .is_none()
    {
        return Err(ApiError::not_found("", "pods", &target.pod));
    }
    if target.ports.is_empty() {
        return Err(ApiError::bad_request(
            "query parameter \"ports\" is required",
        ));
    }
    let offered = request
        .headers()
        .get(header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !offered.split(',').any(|p| p.trim() == PROTOCOL) {
        return Err(ApiError::bad_request(format!(
            "the client offers none of the subprotocols served ({PROTOCOL})"
        )));
    }
    let key = request
        .headers()
        .get(header::SEC_WEBSOCKET_KEY)
        .ok_or_else(|| ApiError::bad_request("no Sec-WebSocket-Key"))?;
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "websocket")
        .header(
            header::SEC_WEBSOCKET_ACCEPT,
            derive_accept_key(key.as_bytes()),
        )
        .header(header::SEC_WEBSOCKET_PROTOCOL, PROTOCOL)
        .body(full(Bytes::new()))
        .map_err(|e| ApiError::bad_request(e.to_string()))
}

/// Bridges the WebSocket's data channels to TCP connections to the ports on loopback, until
/// either side closes.
async fn forward(socket: WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>, ports: &[u16]) {
    let (mut sink, mut stream) = socket.split();
    let (to_client, mut outgoing) = tokio::sync::mpsc::channel::<Message>(64);
    let mut writers = Vec::new();
    for (index, port) in ports.iter().enumerate() {
        let data = (2 * index) as u8;
        for channel in [data, data + 1] {
            let mut opening = vec![channel];
            opening.extend(port.to_le_bytes());
            let _ = to_client.send(Message::binary(opening)).await;
        }
        match TcpStream::connect(("127.0.0.1", *port)).await {
            Ok(connection) => {
                let (mut reader, writer) = connection.into_split();
                writers.push(Some(writer));
                let to_client = to_client.clone();
                tokio::spawn(async move {
                    let mut buffer = vec![0u8; 16 * 1024];
                    loop {
                        match reader.read(&mut buffer).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                let mut frame = Vec::with_capacity(n + 1);
                                frame.push(data);
                                frame.extend_from_slice(&buffer[..n]);
                                if to_client.send(Message::binary(frame)).await.is_err() {
                                    break;
                                }
                            }
                        }
                    }
                    let _ = to_client.send(Message::Close(None)).await;
                });
            }
            Err(error) => {
                writers.push(None);
                let mut frame = vec![data + 1];
                frame.extend(
                    format!("error forwarding port {port}: dial tcp 127.0.0.1:{port}: {error}")
                        .into_bytes(),
                );
                let _ = to_client.send(Message::binary(frame)).await;
                let _ = to_client.send(Message::Close(None)).await;
            }
        }
    }
    drop(to_client);
    let sending = tokio::spawn(async move {
        while let Some(message) = outgoing.recv().await {
            let close = matches!(message, Message::Close(_));
            if sink.send(message).await.is_err() || close {
                break;
            }
        }
        let _ = sink.close().await;
    });
    while let Some(Ok(message)) = stream.next().await {
        match message {
            Message::Binary(bytes) if !bytes.is_empty() => {
                let channel = usize::from(bytes[0]);
                if channel % 2 == 0
                    && let Some(Some(writer)) = writers.get_mut(channel / 2)
                    && writer.write_all(&bytes[1..]).await.is_err()
                {
                    break;
                }
            }
            Message::Close(_) => break,
            _ => {}
        }
    }
    for writer in writers.iter_mut().flatten() {
        let _ = writer.shutdown().await;
    }
    let _ = sending.await;
}
