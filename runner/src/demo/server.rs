//! The accept loop, one hyper HTTP/1.1 connection task per client (keep-alive on), graceful
//! shutdown, and the dispatch of each request to its handler.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use http::Request;
use http::request::Parts;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::input::read_body;
use super::respond::{HandlerResult, Reject, Resp, method_not_allowed, not_found};
use super::routes::{Endpoint, Match, resolve};
use super::state::State;
use super::{concerts, httpbin, plain, reservations, shop, stock};

/// How long a client may take to send a request's headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Accepts connections until `shutdown` changes (or its sender is dropped), then closes the
/// listener, asks every connection to close once idle, and waits for them (at most
/// `shutdown_grace`, after which the rest are dropped).
pub(crate) async fn accept_loop(
    listener: TcpListener,
    state: Arc<State>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            biased;
            _ = shutdown.changed() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    state.stats.connection();
                    connections.spawn(serve(stream, Arc::clone(&state), shutdown.clone()));
                }
                // Out of file descriptors or a connection reset before accept: back off
                // briefly instead of spinning, and keep serving.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
        }
    }
    drop(listener);
    let drain = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(state.config.shutdown_grace, drain)
        .await
        .is_err()
    {
        connections.shutdown().await;
    }
}

/// Serves one connection until the client closes it or shutdown is asked for.
async fn serve(stream: TcpStream, state: Arc<State>, mut shutdown: watch::Receiver<bool>) {
    let _ = stream.set_nodelay(true);
    let service = service_fn(move |request| handle(Arc::clone(&state), request));
    let mut builder = http1::Builder::new();
    builder
        .keep_alive(true)
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    let mut connection = std::pin::pin!(connection);
    tokio::select! {
        _ = connection.as_mut() => return,
        _ = shutdown.changed() => {}
    }
    connection.as_mut().graceful_shutdown();
    let _ = connection.await;
}

/// Answers one request.
async fn handle(state: Arc<State>, request: Request<Incoming>) -> Result<Resp, Infallible> {
    let (parts, body) = request.into_parts();
    let response = match resolve(&parts.method, parts.uri.path()) {
        Match::Found(endpoint, param) => {
            state.stats.hit(endpoint);
            dispatch(&state, endpoint, param, &parts, body)
                .await
                .unwrap_or_else(Reject::into_response)
        }
        Match::NotAllowed(allow) => {
            state.stats.hit(Endpoint::MethodNotAllowed);
            method_not_allowed(allow)
        }
        Match::NotFound => {
            state.stats.hit(Endpoint::NotFound);
            not_found(&format!(
                "no route for {} {}",
                parts.method,
                parts.uri.path()
            ))
            .into_response()
        }
    };
    Ok(response)
}

/// Runs the handler of `endpoint`, reading the body only for endpoints that use one.
async fn dispatch(
    state: &State,
    endpoint: Endpoint,
    param: &str,
    parts: &Parts,
    body: Incoming,
) -> HandlerResult {
    let headers = &parts.headers;
    let query = parts.uri.query();
    let latency = state.config.write_latency;
    let limit = state.config.max_body_bytes;
    match endpoint {
        Endpoint::Root => Ok(plain::root()),
        Endpoint::Boards => Ok(plain::boards(&state.plain)),
        Endpoint::Login => stock::login(&state.stock, &read_body(body, limit).await?),
        Endpoint::StockSearch => stock::search(&state.stock, headers, query),
        Endpoint::StockBuy => stock::buy(&state.stock, headers, &read_body(body, limit).await?),
        Endpoint::Logout => stock::logout(&state.stock, headers),
        Endpoint::AuthToken => {
            reservations::issue_token(&state.reservations, &read_body(body, limit).await?)
        }
        Endpoint::Dates => reservations::dates(&state.reservations, headers),
        Endpoint::Seats => reservations::seats(&state.reservations, headers, query),
        Endpoint::Reserve => {
            let body = read_body(body, limit).await?;
            reservations::reserve(&state.reservations, headers, &body)
        }
        Endpoint::PointsBalance => {
            reservations::balance(&state.reservations, headers, latency).await
        }
        Endpoint::PointsCharge => {
            let body = read_body(body, limit).await?;
            reservations::charge(&state.reservations, headers, &body, latency).await
        }
        Endpoint::Pay => {
            let body = read_body(body, limit).await?;
            reservations::pay(&state.reservations, headers, &body, latency).await
        }
        Endpoint::UserBalance => shop::balance(&state.shop, param, latency).await,
        Endpoint::ChargeUserBalance => {
            let body = read_body(body, limit).await?;
            shop::charge(&state.shop, param, &body, latency).await
        }
        Endpoint::Orders => {
            let body = read_body(body, limit).await?;
            shop::order(&state.shop, &body, latency).await
        }
        Endpoint::Product => shop::product(&state.shop, param),
        Endpoint::Concert => concerts::concert(&state.concerts, param),
        Endpoint::QueueToken => {
            concerts::join_queue(&state.concerts, &read_body(body, limit).await?)
        }
        Endpoint::Status => httpbin::status(param),
        Endpoint::Redirect => httpbin::redirects(param),
        Endpoint::RedirectTo => httpbin::redirect_to(parts),
        Endpoint::Get => Ok(httpbin::get(parts)),
        Endpoint::Delay => httpbin::delay(parts, param).await,
        Endpoint::Json => Ok(httpbin::json_document()),
        Endpoint::Anything => Ok(httpbin::anything(parts, &read_body(body, limit).await?)),
        Endpoint::Headers => Ok(httpbin::echo_headers(parts)),
        Endpoint::Cookies => Ok(httpbin::echo_cookies(parts)),
        Endpoint::CookiesSet => httpbin::set_cookies(parts),
        Endpoint::Bytes => httpbin::random_bytes(param),
        Endpoint::NotFound | Endpoint::MethodNotAllowed => Err(not_found("no route")),
    }
}
