//! Faults a test injects at the stand-in's HTTP edge, for every client alike (operator,
//! runners, kubelet, kubectl): an outage (every request answered 503, as from a load balancer
//! in front of a down API server), cuts of every open watch stream, and chosen writes answered
//! with an error (409 Conflict, 503) a number of times or until cleared.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::StreamExt;
use http::Method;
use http_body_util::{BodyExt, BodyStream, StreamBody};
use tokio::sync::watch;

use super::errors::ApiError;
use super::routes::{Body, json_response};

/// One kind of write answered with an error.
#[derive(Debug, Clone)]
struct WriteFault {
    /// Writes (POST, PUT, PATCH) whose path contains this.
    path_contains: String,
    /// The HTTP status they get.
    code: u16,
    /// How many more times (None: until cleared).
    remaining: Option<u32>,
    /// Only PATCH requests (a test's own PUT passes).
    patches_only: bool,
    /// How many writes it has refused so far.
    hits: u32,
}

/// The faults in force.
#[derive(Debug)]
pub struct Chaos {
    outage: AtomicBool,
    cuts: watch::Sender<u64>,
    writes: Mutex<Vec<WriteFault>>,
}

impl Default for Chaos {
    fn default() -> Self {
        Chaos {
            outage: AtomicBool::new(false),
            cuts: watch::Sender::new(0),
            writes: Mutex::new(Vec::new()),
        }
    }
}

/// The answer to a refused request: the stand-in's own `Status` error response.
fn refused(code: u16, reason: &'static str, message: &str) -> http::Response<Body> {
    let error = ApiError {
        code,
        reason,
        message: message.to_string(),
        details: None,
    };
    json_response(error.code, &error.status(), &[])
}

impl Chaos {
    /// Starts (true) or ends (false) an outage; starting one also cuts every open watch.
    pub fn set_outage(&self, down: bool) {
        self.outage.store(down, Ordering::SeqCst);
        if down {
            self.cut_watches();
        }
    }

    /// Ends every watch stream open now (clients see the stream end and watch again).
    pub fn cut_watches(&self) {
        self.cuts.send_modify(|generation| *generation += 1);
    }

    /// Answers the next `times` writes whose path contains `path_contains` (every one until
    /// [`Chaos::clear_write_faults`] when None) with `code`.
    pub fn fail_writes(&self, path_contains: &str, code: u16, times: Option<u32>) {
        self.add(path_contains, code, times, false);
    }

    /// Like [`Chaos::fail_writes`] for PATCH requests only (how the operator and the runners
    /// write), so a test can still replace the object with a PUT.
    pub fn fail_patches(&self, path_contains: &str, code: u16, times: Option<u32>) {
        self.add(path_contains, code, times, true);
    }

    fn add(&self, path_contains: &str, code: u16, times: Option<u32>, patches_only: bool) {
        self.lock().push(WriteFault {
            path_contains: path_contains.to_string(),
            code,
            remaining: times,
            patches_only,
            hits: 0,
        });
    }

    /// How many writes the faults on `path_contains` have refused so far.
    pub fn write_fault_hits(&self, path_contains: &str) -> u32 {
        self.lock()
            .iter()
            .filter(|f| f.path_contains == path_contains)
            .map(|f| f.hits)
            .sum()
    }

    /// Ends every write fault (their hit counts stay readable).
    pub fn clear_write_faults(&self) {
        for fault in self.lock().iter_mut() {
            fault.remaining = Some(0);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<WriteFault>> {
        self.writes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The response a fault gives this request instead of serving it, if any.
    pub fn intercept(&self, method: &Method, path: &str) -> Option<http::Response<Body>> {
        if self.outage.load(Ordering::SeqCst) {
            return Some(refused(
                503,
                "ServiceUnavailable",
                "the API server is unavailable (injected outage)",
            ));
        }
        if !matches!(*method, Method::POST | Method::PUT | Method::PATCH) {
            return None;
        }
        let mut faults = self.lock();
        let fault = faults.iter_mut().find(|f| {
            path.contains(&f.path_contains)
                && f.remaining != Some(0)
                && (!f.patches_only || *method == Method::PATCH)
        })?;
        if let Some(remaining) = fault.remaining.as_mut() {
            *remaining -= 1;
        }
        fault.hits += 1;
        let (reason, message) = match fault.code {
            409 => (
                "Conflict",
                "Operation cannot be fulfilled: the object has been modified; please apply your changes to the latest version and try again (injected conflict)",
            ),
            503 => (
                "ServiceUnavailable",
                "the write is refused (injected fault)",
            ),
            _ => ("InternalError", "the write failed (injected fault)"),
        };
        Some(refused(fault.code, reason, message))
    }

    /// `body` of a watch response, ended by the next cut.
    pub fn cuttable(&self, body: Body) -> Body {
        let mut cuts = self.cuts.subscribe();
        cuts.mark_unchanged();
        let cut = Box::pin(async move {
            let _ = cuts.changed().await;
        });
        let frames = BodyStream::new(body).take_until(cut);
        BodyExt::boxed(StreamBody::new(frames))
    }
}

/// Whether a request is a watch (its response streams until it ends).
pub fn is_watch(query: Option<&str>) -> bool {
    query.is_some_and(|q| {
        q.split('&')
            .any(|pair| matches!(pair, "watch=true" | "watch=1"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn write_faults_count_down_and_only_touch_writes_of_their_path() {
        let chaos = Chaos::default();
        chaos.fail_writes("/configmaps/r-0", 409, Some(2));
        let path = "/api/v1/namespaces/n/configmaps/r-0";
        assert!(chaos.intercept(&Method::GET, path).is_none());
        assert!(
            chaos
                .intercept(&Method::PATCH, "/api/v1/namespaces/n/configmaps/x")
                .is_none()
        );
        let first = chaos.intercept(&Method::PATCH, path).expect("refused");
        assert_eq!(first.status(), 409);
        assert!(chaos.intercept(&Method::PUT, path).is_some());
        assert!(chaos.intercept(&Method::PATCH, path).is_none(), "two only");
        assert_eq!(chaos.write_fault_hits("/configmaps/r-0"), 2);

        chaos.fail_patches("/configmaps/r-1", 503, None);
        let path = "/api/v1/namespaces/n/configmaps/r-1";
        assert!(
            chaos.intercept(&Method::PUT, path).is_none(),
            "a PUT passes"
        );
        assert!(chaos.intercept(&Method::PATCH, path).is_some());
        chaos.clear_write_faults();
        assert!(chaos.intercept(&Method::PATCH, path).is_none(), "cleared");
    }

    #[test]
    fn an_outage_refuses_everything_until_it_ends() {
        let chaos = Chaos::default();
        chaos.set_outage(true);
        let reply = chaos.intercept(&Method::GET, "/api/v1/pods").expect("down");
        assert_eq!(reply.status(), 503);
        chaos.set_outage(false);
        assert!(chaos.intercept(&Method::GET, "/api/v1/pods").is_none());
    }

    #[tokio::test]
    async fn a_cut_ends_open_watch_bodies() {
        let chaos = Chaos::default();
        let (sender, receiver) = tokio::sync::mpsc::channel::<Bytes>(4);
        let stream = futures::stream::unfold(receiver, |mut r| async move {
            r.recv().await.map(|b| {
                (
                    Ok::<_, std::convert::Infallible>(hyper::body::Frame::data(b)),
                    r,
                )
            })
        });
        let body = chaos.cuttable(BodyExt::boxed(StreamBody::new(stream)));
        sender.send(Bytes::from_static(b"one\n")).await.unwrap();
        let reader = tokio::spawn(async move { body.collect().await.map(|c| c.to_bytes()) });
        // Wait until the frame is read, then cut: the body ends though the sender stays open.
        while sender.capacity() < 4 {
            tokio::task::yield_now().await;
        }
        chaos.cut_watches();
        let collected = tokio::time::timeout(std::time::Duration::from_secs(10), reader)
            .await
            .expect("the cut ends the body")
            .unwrap()
            .unwrap();
        assert_eq!(&collected[..], b"one\n");
        drop(sender);
    }

    #[test]
    fn watches_are_told_by_their_query() {
        assert!(is_watch(Some("labelSelector=a&watch=true")));
        assert!(is_watch(Some("watch=1")));
        assert!(!is_watch(Some("watch=false")));
        assert!(!is_watch(None));
    }
}
