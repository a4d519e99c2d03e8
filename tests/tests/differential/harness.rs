//! The harness of the differential test: the same raw request to the stand-in (in memory) and
//! to a real apiextensions-apiserver, and the comparison of their answers — verdicts (HTTP code
//! and reason), messages (422s compared cause by cause, since the real server's order of
//! several errors is not stable) and stored content.

use std::collections::{BTreeMap, BTreeSet};

use http_body_util::BodyExt;
use serde_json::Value;

/// A server under comparison.
pub struct Target {
    /// `real` or `stand-in`.
    pub name: &'static str,
    client: kube::Client,
}

impl Target {
    /// A target reached through `client` (built from the server's kubeconfig, as the admin).
    pub fn new(name: &'static str, client: kube::Client) -> Target {
        Target { name, client }
    }

    /// Sends one request; transport failures panic (the servers run on loopback).
    pub async fn send(&self, request: &Request) -> Outcome {
        let mut builder = http::Request::builder()
            .method(request.method.as_str())
            .uri(&request.path)
            .header(http::header::ACCEPT, &request.accept);
        if request.body.is_some() {
            builder = builder.header(http::header::CONTENT_TYPE, &request.content_type);
        }
        let body = request.body.clone().unwrap_or_default();
        let http_request = builder
            .body(kube::client::Body::from(body))
            .unwrap_or_else(|e| panic!("{}: building {}: {e}", self.name, request.path));
        let response =
            self.client.send(http_request).await.unwrap_or_else(|e| {
                panic!("{}: {} {}: {e}", self.name, request.method, request.path)
            });
        let code = response.status().as_u16();
        let bytes = response
            .into_body()
            .collect()
            .await
            .unwrap_or_else(|e| panic!("{}: reading the answer: {e}", self.name))
            .to_bytes();
        let body: Value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        Outcome::new(code, body)
    }
}

/// One request, as sent to both servers.
#[derive(Debug, Clone)]
pub struct Request {
    /// GET, POST, PUT, PATCH, DELETE.
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Content-Type of the body.
    pub content_type: String,
    /// Accept.
    pub accept: String,
    /// The body bytes.
    pub body: Option<Vec<u8>>,
}

impl Request {
    /// A request without a body.
    pub fn get(path: &str) -> Request {
        Request {
            method: "GET".into(),
            path: path.into(),
            content_type: "application/json".into(),
            accept: "application/json".into(),
            body: None,
        }
    }

    /// A request with a JSON body, serialized compactly with sorted keys.
    pub fn json(method: &str, path: &str, body: &Value) -> Request {
        Request {
            method: method.into(),
            path: path.into(),
            content_type: "application/json".into(),
            accept: "application/json".into(),
            body: Some(body.to_string().into_bytes()),
        }
    }

    /// A PATCH of the given content type.
    pub fn patch(path: &str, content_type: &str, body: &Value) -> Request {
        Request {
            content_type: content_type.into(),
            ..Request::json("PATCH", path, body)
        }
    }

    /// A DELETE.
    pub fn delete(path: &str) -> Request {
        Request {
            method: "DELETE".into(),
            ..Request::get(path)
        }
    }

    /// The same request asking for another representation.
    pub fn accepting(mut self, accept: &str) -> Request {
        self.accept = accept.into();
        self
    }
}

/// What a server answered.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// HTTP status.
    pub code: u16,
    /// `Status.reason` of a failure ("" on success).
    pub reason: String,
    /// `Status.message` of a failure ("" on success).
    pub message: String,
    /// `field: message` of every `Status.details.causes` entry, in order.
    pub causes: Vec<String>,
    /// The whole body.
    pub body: Value,
}

impl Outcome {
    fn new(code: u16, body: Value) -> Outcome {
        let failed = code >= 400;
        let text = |name: &str| {
            body.get(name)
                .and_then(Value::as_str)
                .filter(|_| failed)
                .unwrap_or_default()
                .to_string()
        };
        let causes = body
            .pointer("/details/causes")
            .and_then(Value::as_array)
            .filter(|_| failed)
            .map(|causes| {
                causes
                    .iter()
                    .map(|c| {
                        let field = c.get("field").and_then(Value::as_str).unwrap_or_default();
                        let message = c.get("message").and_then(Value::as_str).unwrap_or_default();
                        if field.is_empty() {
                            message.to_string()
                        } else {
                            format!("{field}: {message}")
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        Outcome {
            code,
            reason: text("reason"),
            message: text("message"),
            causes,
            body,
        }
    }

    /// `201`, or `422 Invalid`.
    pub fn verdict(&self) -> String {
        if self.reason.is_empty() {
            self.code.to_string()
        } else {
            format!("{} {}", self.code, self.reason)
        }
    }

    /// The message in a form that does not depend on the order of several errors: for an
    /// aggregate of the causes (`head: a` or `head: [a, b]`, what 422s look like), the head and
    /// the sorted causes; any other message as it is.
    pub fn canonical_message(&self, normalize: &dyn Fn(&str) -> String) -> String {
        let message = normalize(&self.message);
        let mut unique: Vec<String> = Vec::new();
        for cause in &self.causes {
            let cause = normalize(cause);
            if !unique.contains(&cause) {
                unique.push(cause);
            }
        }
        let body = match unique.as_slice() {
            [] => return message,
            [single] => single.clone(),
            several => format!("[{}]", several.join(", ")),
        };
        let Some(head) = message
            .strip_suffix(&body)
            .and_then(|h| h.strip_suffix(": "))
        else {
            // Not an aggregate of its causes: compare it as it is.
            return message;
        };
        let sorted: BTreeSet<String> = unique.into_iter().collect();
        let sorted: Vec<String> = sorted.into_iter().collect();
        format!("{head}: {{{}}}", sorted.join(" | "))
    }
}

/// The tally of the comparison.
#[derive(Debug, Default)]
pub struct Tally {
    /// Requests sent (to each server).
    pub requests: usize,
    /// Different verdicts, described.
    pub verdicts: Vec<String>,
    /// Same verdict, different messages, described.
    pub messages: Vec<String>,
    /// Same verdict, different stored content (or content the server did not keep), described.
    pub contents: Vec<String>,
    /// How often the real server gave each verdict.
    pub real_verdicts: BTreeMap<String, usize>,
}

impl Tally {
    /// The summary line.
    pub fn summary(&self) -> String {
        format!(
            "differential: {} requests, {} verdict differences, {} message differences, {} content differences",
            self.requests,
            self.verdicts.len(),
            self.messages.len(),
            self.contents.len()
        )
    }

    /// The real server's verdicts and how often each came.
    pub fn verdict_counts(&self) -> String {
        let counts: Vec<String> = self
            .real_verdicts
            .iter()
            .map(|(verdict, count)| format!("{verdict} ×{count}"))
            .collect();
        counts.join(", ")
    }

    /// Whether nothing differed.
    pub fn clean(&self) -> bool {
        self.verdicts.is_empty() && self.messages.is_empty() && self.contents.is_empty()
    }
}

/// The real server and the stand-in, and the tally of their differences.
pub struct Pair {
    /// The real apiextensions-apiserver.
    pub real: Target,
    /// The stand-in in memory.
    pub stand_in: Target,
    /// What differed so far.
    pub tally: Tally,
}

/// Rewrites what legitimately differs between the servers' messages.
pub type Normalizer = dyn Fn(&str) -> String;

impl Pair {
    /// Sends `request` to both servers and compares the answers; returns (real, stand-in).
    pub async fn compare(
        &mut self,
        label: &str,
        request: &Request,
        normalize: &dyn Fn(&str) -> String,
    ) -> (Outcome, Outcome) {
        self.compare_each(label, request, request, normalize).await
    }

    /// Like [`Pair::compare`] with a request of its own for each server (bodies that must
    /// carry each server's resourceVersion).
    pub async fn compare_each(
        &mut self,
        label: &str,
        to_real: &Request,
        to_stand_in: &Request,
        normalize: &dyn Fn(&str) -> String,
    ) -> (Outcome, Outcome) {
        let real = self.real.send(to_real).await;
        let stand_in = self.stand_in.send(to_stand_in).await;
        self.tally.requests += 1;
        *self.tally.real_verdicts.entry(real.verdict()).or_default() += 1;
        if real.verdict() != stand_in.verdict() {
            self.tally.verdicts.push(format!(
                "{label}: {} {}\n    real:     {} {}\n    stand-in: {} {}",
                to_real.method,
                to_real.path,
                real.verdict(),
                real.message,
                stand_in.verdict(),
                stand_in.message
            ));
        } else if real.code >= 400 {
            let (expected, got) = (
                real.canonical_message(normalize),
                stand_in.canonical_message(normalize),
            );
            if expected != got {
                self.tally.messages.push(format!(
                    "{label}: {} {}\n    real:     {}\n    stand-in: {}",
                    to_real.method, to_real.path, real.message, stand_in.message
                ));
            }
        }
        (real, stand_in)
    }

    /// Sends `request` to both without comparing (clean-up, set-up the servers share).
    pub async fn both(&mut self, request: &Request) -> (Outcome, Outcome) {
        (
            self.real.send(request).await,
            self.stand_in.send(request).await,
        )
    }

    /// Records a difference in stored content.
    pub fn content(&mut self, label: &str, what: String) {
        self.tally.contents.push(format!("{label}: {what}"));
    }
}

/// Messages as they are.
pub fn verbatim(message: &str) -> String {
    message.to_string()
}

/// Cost factors (`by factor of 1.7x`) need not match, only the verdict.
pub fn without_cost_factors(message: &str) -> String {
    let mut out = String::new();
    let mut rest = message;
    const MARK: &str = "by factor of ";
    while let Some(at) = rest.find(MARK) {
        out.push_str(&rest[..at + MARK.len()]);
        rest = &rest[at + MARK.len()..];
        let end = rest.find(" (").unwrap_or(rest.len());
        out.push('N');
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// Replaces names generated from `prefix` (five random characters after it) with `prefix*****`.
pub fn generated_names(prefix: &str) -> impl Fn(&str) -> String + '_ {
    move |message: &str| {
        let mut out = String::new();
        let mut rest = message;
        while let Some(at) = rest.find(prefix) {
            out.push_str(&rest[..at + prefix.len()]);
            rest = &rest[at + prefix.len()..];
            let suffix: String = rest.chars().take(5).collect();
            if suffix.len() == 5 && suffix.chars().all(|c| c.is_ascii_alphanumeric()) {
                out.push_str("*****");
                rest = &rest[5..];
            }
        }
        out.push_str(rest);
        out
    }
}

/// Every path (`.a.b[0]`) in `sent` whose value `stored` lacks or holds differently.
pub fn not_kept(sent: &Value, stored: &Value, path: &str, found: &mut Vec<String>) {
    match (sent, stored) {
        (Value::Object(sent), Value::Object(stored)) => {
            for (key, value) in sent {
                match stored.get(key) {
                    Some(kept) => not_kept(value, kept, &format!("{path}.{key}"), found),
                    None => found.push(format!("{path}.{key}")),
                }
            }
        }
        (Value::Array(sent), Value::Array(stored)) if sent.len() == stored.len() => {
            for (i, (a, b)) in sent.iter().zip(stored).enumerate() {
                not_kept(a, b, &format!("{path}[{i}]"), found);
            }
        }
        (Value::Number(a), Value::Number(b)) if a.as_f64() == b.as_f64() => {}
        (a, b) if a == b => {}
        _ => found.push(path.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn aggregates_compare_whatever_their_order() {
        let outcome = |message: &str, causes: Value| {
            Outcome::new(
                422,
                json!({"reason": "Invalid", "message": message, "details": {"causes": causes}}),
            )
        };
        let a = outcome(
            "X \"n\" is invalid: [f: Required value, g: Invalid value: 1: bad]",
            json!([{"field": "f", "message": "Required value"}, {"field": "g", "message": "Invalid value: 1: bad"}]),
        );
        let b = outcome(
            "X \"n\" is invalid: [g: Invalid value: 1: bad, f: Required value]",
            json!([{"field": "g", "message": "Invalid value: 1: bad"}, {"field": "f", "message": "Required value"}]),
        );
        assert_eq!(
            a.canonical_message(&verbatim),
            b.canonical_message(&verbatim)
        );
        let c = outcome(
            "X \"n\" is invalid: f: Required value",
            json!([{"field": "f", "message": "Required value"}]),
        );
        assert_ne!(
            a.canonical_message(&verbatim),
            c.canonical_message(&verbatim)
        );
    }

    #[test]
    fn normalizers() {
        assert_eq!(
            without_cost_factors(
                "cost exceeds budget by factor of 1.7x (try this), by factor of more than 100x (try)"
            ),
            "cost exceeds budget by factor of N (try this), by factor of N (try)"
        );
        assert_eq!(
            generated_names("bad-")("\"bad-x7k2q\" is invalid"),
            "\"bad-*****\" is invalid"
        );
        let mut found = Vec::new();
        not_kept(
            &json!({"a": {"b": 1, "c": [1, 2]}}),
            &json!({"a": {"b": 1.0, "c": [1]}}),
            "",
            &mut found,
        );
        assert_eq!(found, vec![".a.c"]);
    }
}
