//! The HTTP side of a live dashboard, shared by `stampede run --dashboard` and the operator's
//! fleet dashboard: a small server loop, page responses, and a server-sent event stream that
//! sends a page's latest update at once, then every period, and ends after the final one.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use http::{Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, StreamBody, combinators::UnsyncBoxBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// A response body: a page, or an event stream.
pub type Body = UnsyncBoxBody<Bytes, Infallible>;

/// One update of a page, as [`crate::html_report::live_update`] makes it.
#[derive(Debug, Clone)]
pub struct Update {
    /// The update's JSON (no raw line breaks).
    pub json: Arc<String>,
    /// Whether it is the final one: the stream ends after it.
    pub done: bool,
}

/// Where an event stream reads its page's updates.
pub trait UpdateSource: Send + Sync + 'static {
    /// The latest update; none when there is nothing (any more) to show, which ends the stream.
    fn latest(&self) -> Option<Update>;
    /// A stream opened.
    fn opened(&self) {}
    /// A stream ended (or its page went away).
    fn closed(&self) {}
}

/// Serves every connection on `listener` with `respond`, until the task is dropped.
pub async fn serve<F>(listener: TcpListener, respond: Arc<F>)
where
    F: Fn(&Request<Incoming>) -> Response<Body> + Send + Sync + 'static,
{
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let respond = Arc::clone(&respond);
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let response = respond(&request);
                async move { Ok::<_, Infallible>(response) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// A response of `content_type` that no cache keeps.
pub fn with_type(content_type: &'static str, body: Body) -> Response<Body> {
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    headers.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    response
}

/// An HTML page.
pub fn html(page: String) -> Response<Body> {
    with_type(
        "text/html; charset=utf-8",
        Full::new(Bytes::from(page)).boxed_unsync(),
    )
}

/// A short plain-text answer.
pub fn plain(status: StatusCode, text: &'static str) -> Response<Body> {
    let mut response = with_type(
        "text/plain; charset=utf-8",
        Full::new(Bytes::from_static(text.as_bytes())).boxed_unsync(),
    );
    *response.status_mut() = status;
    response
}

/// Where one event stream is.
enum Next {
    /// Send the latest update now.
    First,
    /// Send one after the period.
    Later,
    /// The final update was sent.
    Done,
}

/// Counts a stream as closed when it ends or its page goes away.
struct Open(Arc<dyn UpdateSource>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.closed();
    }
}

/// A page's event stream: `update` events from `source` at once and every `period`, then one
/// `final` event, after which it ends.
pub fn event_stream(source: Arc<dyn UpdateSource>, period: Duration) -> Response<Body> {
    source.opened();
    let open = Open(source);
    let stream = futures::stream::unfold((Next::First, open), move |(next, open)| async move {
        match next {
            Next::Done => return None,
            Next::First => {}
            Next::Later => tokio::time::sleep(period).await,
        }
        let update = open.0.latest()?;
        let (name, next) = if update.done {
            ("final", Next::Done)
        } else {
            ("update", Next::Later)
        };
        let event = format!("event: {name}\ndata: {}\n\n", update.json);
        Some((Ok(Frame::data(Bytes::from(event))), (next, open)))
    });
    with_type(
        "text/event-stream",
        BodyExt::boxed_unsync(StreamBody::new(stream.boxed())),
    )
}
