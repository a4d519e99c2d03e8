//! A virtual user: its connections, cookie jar, variables and data rows, and how it runs one
//! iteration of a flow — render, send (following redirects, each hop a sample as in k6),
//! record, capture, check, sleep.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use stampede_crds::expr::ExprContext;
use stampede_crds::template::{Builtin, Reference, Resolve, Template};

use super::calls::WithCalls;
use super::cookies::CookieJar;
use super::cut::CutGuard;
use super::flow::{
    Action, BodyTemplate, CaptureSource, CompiledFlow, CompiledRequest, CompiledStep, JsonTemplate,
};
use super::label::RequestLabel;
use super::redirect;
use super::shared::{ScenarioContext, Shared};
use crate::http::{BodyMode, OutgoingRequest, SendOptions, Target, Timings, VuClient};
use crate::metrics::recorder::HttpFigures;
use crate::metrics::{Metric, SampleTags};

/// How an iteration ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IterationEnd {
    /// It ran to the end (failed checks included: they never stop an iteration, as in k6).
    Completed,
    /// A step could not continue (missing required capture, unrenderable template); the rest
    /// of the iteration was skipped. k6 counts such an iteration (an exception) as completed.
    Failed(String),
    /// A `unique` data table ran out of rows: the VU has no more work.
    DataExhausted,
}

/// One virtual user.
#[derive(Debug)]
pub struct Vu {
    /// VU number, 1-based, unique in the test.
    pub id: u64,
    /// Iterations this VU started.
    pub iterations: u64,
    client: VuClient,
    vars: HashMap<String, String>,
    cookies: CookieJar,
    rows: Vec<usize>,
    rng: fastrand::Rng,
}

struct Vars<'a> {
    vars: &'a HashMap<String, String>,
    shared: &'a Shared,
    scenario: &'a ScenarioContext,
    rows: &'a [usize],
    vu: u64,
    iter: u64,
    iteration_in_test: u64,
}

impl Resolve for Vars<'_> {
    fn resolve(&mut self, reference: &Reference) -> Option<Cow<'_, str>> {
        let number = |n: u64| Some(Cow::Owned(n.to_string()));
        match reference {
            Reference::Var(name) => self.vars.get(name).map(|v| Cow::Borrowed(v.as_str())),
            Reference::Env(name) => self
                .scenario
                .env
                .get(name)
                .or_else(|| self.shared.env.get(name))
                .map(|v| Cow::Borrowed(v.as_str())),
            Reference::Data { table, column } => self
                .shared
                .tables
                .value(table, column, self.rows)
                .map(Cow::Borrowed),
            Reference::Setup(name) => self.shared.setup_value(name).map(Cow::Owned),
            Reference::Builtin(Builtin::Vu) => number(self.vu),
            Reference::Builtin(Builtin::Iter) => number(self.iter),
            Reference::Builtin(Builtin::IterationInTest) => number(self.iteration_in_test),
            Reference::Builtin(Builtin::Runner) => number(self.shared.runner_index),
            Reference::Builtin(Builtin::Scenario) => {
                Some(Cow::Borrowed(self.scenario.name.as_str()))
            }
            Reference::Call(_) => None,
        }
    }
}

/// The response as checks see it.
struct ResponseView<'a, R> {
    status: u16,
    duration_ms: f64,
    body: Option<&'a str>,
    headers: &'a HeaderMap,
    cookies: &'a CookieJar,
    json: Option<&'a serde_json::Value>,
    resolver: R,
}

impl<R: Resolve> ExprContext for ResponseView<'_, R> {
    fn status(&self) -> Option<u16> {
        Some(self.status)
    }
    fn duration_ms(&self) -> Option<f64> {
        Some(self.duration_ms)
    }
    fn body(&self) -> Option<&str> {
        self.body
    }
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    fn cookie(&self, name: &str) -> Option<&str> {
        self.cookies.get(name)
    }
    fn json(&self) -> Option<&serde_json::Value> {
        self.json
    }
    fn resolve(&mut self, reference: &Reference) -> Option<String> {
        self.resolver.resolve(reference).map(Cow::into_owned)
    }
}

/// Conditions (`if`) see no response.
struct NoResponse<R>(R);

impl<R: Resolve> ExprContext for NoResponse<R> {
    fn status(&self) -> Option<u16> {
        None
    }
    fn duration_ms(&self) -> Option<f64> {
        None
    }
    fn body(&self) -> Option<&str> {
        None
    }
    fn header(&self, _: &str) -> Option<&str> {
        None
    }
    fn cookie(&self, _: &str) -> Option<&str> {
        None
    }
    fn json(&self) -> Option<&serde_json::Value> {
        None
    }
    fn resolve(&mut self, reference: &Reference) -> Option<String> {
        self.0.resolve(reference).map(Cow::into_owned)
    }
}

/// The final response of a request (after redirects), kept for captures and checks.
struct Outcome {
    status: u16,
    duration_ms: f64,
    headers: HeaderMap,
    body: Bytes,
}

/// A request's figures in milliseconds, as the recorder takes them.
fn http_figures(timings: &Timings, failed: bool, sent: u64, received: u64) -> HttpFigures {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    HttpFigures {
        failed,
        phases: [
            ms(timings.blocked),
            ms(timings.connecting),
            ms(timings.tls_handshaking),
            ms(timings.sending),
            ms(timings.waiting),
            ms(timings.receiving),
        ],
        duration: ms(timings.duration),
        sent,
        received,
    }
}

impl Vu {
    /// A VU with its own client.
    pub fn new(id: u64, shared: &Shared) -> Vu {
        Vu {
            id,
            iterations: 0,
            client: VuClient::new(Arc::clone(&shared.client_config)),
            vars: HashMap::new(),
            cookies: CookieJar::default(),
            rows: Vec::new(),
            rng: fastrand::Rng::with_seed(shared.seed ^ id.wrapping_mul(0x9E37_79B9_7F4A_7C15)),
        }
    }

    fn resolver<'a>(
        &'a self,
        shared: &'a Shared,
        scenario: &'a ScenarioContext,
        iteration_in_test: u64,
    ) -> Vars<'a> {
        Vars {
            vars: &self.vars,
            shared,
            scenario,
            rows: &self.rows,
            vu: self.id,
            iter: self.iterations.saturating_sub(1),
            iteration_in_test,
        }
    }

    fn render(
        &mut self,
        template: &Template,
        shared: &Shared,
        scenario: &ScenarioContext,
        iteration_in_test: u64,
    ) -> Result<String, String> {
        if let Some(text) = template.as_literal() {
            return Ok(text.to_string());
        }
        let mut rng = self.rng.clone();
        let result = {
            let vars = self.resolver(shared, scenario, iteration_in_test);
            let mut with_calls = WithCalls::new(vars, || rng.u64(..));
            template.render(&mut with_calls).map_err(|e| e.to_string())
        };
        self.rng = rng;
        result
    }

    /// Runs one iteration of `flow` for `scenario` and records its samples.
    pub async fn iteration(
        &mut self,
        shared: &Shared,
        scenario: &ScenarioContext,
        flow: &CompiledFlow,
        iteration_in_test: u64,
    ) -> IterationEnd {
        self.iterations += 1;
        if !shared.no_cookies_reset {
            self.cookies.clear();
        }
        if shared.no_vu_connection_reuse {
            self.client.close_connections();
        }
        self.vars.clear();
        let mut rng = self.rng.clone();
        let has_rows = shared.tables.select(
            &mut self.rows,
            self.id,
            iteration_in_test,
            &shared.segment,
            &mut rng,
        );
        self.rng = rng;
        if !has_rows {
            self.iterations -= 1;
            return IterationEnd::DataExhausted;
        }
        let started = Instant::now();
        let end = match Box::pin(self.steps(&flow.steps, shared, scenario, "", iteration_in_test))
            .await
        {
            Ok(()) => IterationEnd::Completed,
            Err(message) => {
                shared.report_error(&scenario.name, None, "iteration", &message);
                IterationEnd::Failed(message)
            }
        };
        if let Some(minimum) = shared.min_iteration_duration {
            let elapsed = started.elapsed();
            if elapsed < minimum {
                tokio::time::sleep(minimum - elapsed).await;
            }
        }
        let tags = SampleTags {
            scenario: Some(&scenario.name),
            group: Some(""),
            custom: &scenario.tags,
            ..SampleTags::default()
        };
        shared
            .recorder
            .iteration(&tags, started.elapsed().as_secs_f64() * 1000.0);
        end
    }

    /// Runs the setup or teardown steps once (k6 `setup()` / `teardown()`), returning the
    /// variables they captured.
    pub async fn run_once(
        &mut self,
        shared: &Shared,
        scenario: &ScenarioContext,
        flow: &CompiledFlow,
        group: &str,
    ) -> Result<HashMap<String, String>, String> {
        self.vars.clear();
        self.steps(&flow.steps, shared, scenario, group, 0).await?;
        Ok(std::mem::take(&mut self.vars))
    }

    async fn steps(
        &mut self,
        steps: &[CompiledStep],
        shared: &Shared,
        scenario: &ScenarioContext,
        group: &str,
        iteration_in_test: u64,
    ) -> Result<(), String> {
        for step in steps {
            if let Some(condition) = &step.condition {
                let holds = {
                    let vars = self.resolver(shared, scenario, iteration_in_test);
                    condition.evaluate(&mut NoResponse(vars))
                };
                match holds {
                    Ok(true) => {}
                    Ok(false) => continue,
                    Err(error) => return Err(format!("if {:?}: {error}", condition.source())),
                }
            }
            match &step.action {
                Action::Sleep(min, max) => {
                    let pause = if max > min {
                        let span = (*max - *min).as_nanos() as u64;
                        *min + Duration::from_nanos(self.rng.u64(..=span))
                    } else {
                        *min
                    };
                    tokio::time::sleep(pause).await;
                }
                Action::Group { tag, steps } => {
                    let started = Instant::now();
                    let result =
                        Box::pin(self.steps(steps, shared, scenario, tag, iteration_in_test)).await;
                    let tags = SampleTags {
                        scenario: Some(&scenario.name),
                        group: Some(tag),
                        custom: &scenario.tags,
                        ..SampleTags::default()
                    };
                    shared.recorder.add(
                        Metric::GroupDuration,
                        &tags,
                        started.elapsed().as_secs_f64() * 1000.0,
                    );
                    result?;
                }
                Action::Request(request) => {
                    let outcome = self
                        .request(
                            request,
                            step.needs_body,
                            shared,
                            scenario,
                            group,
                            iteration_in_test,
                        )
                        .await?;
                    self.after_response(
                        step,
                        &outcome,
                        shared,
                        scenario,
                        group,
                        iteration_in_test,
                    )?;
                }
            }
        }
        Ok(())
    }

    fn render_headers(
        &mut self,
        request: &CompiledRequest,
        shared: &Shared,
        scenario: &ScenarioContext,
        iteration_in_test: u64,
    ) -> Result<HeaderMap, String> {
        let mut headers = HeaderMap::with_capacity(request.headers.len() + 2);
        for (name, value) in &request.headers {
            let value = self.render(value, shared, scenario, iteration_in_test)?;
            let value = HeaderValue::from_str(&value)
                .map_err(|_| format!("header {name}: value is not valid in a header"))?;
            headers.insert(name.clone(), value);
        }
        Ok(headers)
    }

    fn build_url(
        &mut self,
        request: &CompiledRequest,
        shared: &Shared,
        scenario: &ScenarioContext,
        iteration_in_test: u64,
    ) -> Result<Target, String> {
        // A literal URL without query parameters resolves to the same target every time:
        // join it once per request definition, not once per request.
        let literal = request.url.is_literal() && request.query.is_empty();
        if literal && let Some(target) = request.fixed_target.get() {
            return Ok(target.clone());
        }
        let mut url = self.render(&request.url, shared, scenario, iteration_in_test)?;
        if !request.query.is_empty() {
            let mut pairs = form_urlencoded::Serializer::new(String::new());
            for (key, value) in &request.query {
                let value = self.render(value, shared, scenario, iteration_in_test)?;
                pairs.append_pair(key, &value);
            }
            url.push(if url.contains('?') { '&' } else { '?' });
            url.push_str(&pairs.finish());
        }
        let target = if url.starts_with("http://") || url.starts_with("https://") {
            Target::parse(&url).map_err(|e| bad_url(&request.url, &e))?
        } else {
            let base = shared.base_url.as_ref().ok_or_else(|| {
                format!(
                    "url {:?} is relative but no baseUrl is set",
                    request.url.to_string()
                )
            })?;
            Target::join(base, &url).map_err(|e| bad_url(&request.url, &e))?
        };
        if literal {
            let _ = request.fixed_target.set(target.clone());
        }
        Ok(target)
    }

    fn render_body(
        &mut self,
        request: &CompiledRequest,
        shared: &Shared,
        scenario: &ScenarioContext,
        iteration_in_test: u64,
    ) -> Result<Bytes, String> {
        Ok(match &request.body {
            BodyTemplate::Fixed(bytes) => bytes.clone(),
            BodyTemplate::Raw(template) => {
                Bytes::from(self.render(template, shared, scenario, iteration_in_test)?)
            }
            BodyTemplate::Form(fields) => {
                let mut pairs = form_urlencoded::Serializer::new(String::new());
                for (key, value) in fields {
                    let value = self.render(value, shared, scenario, iteration_in_test)?;
                    pairs.append_pair(key, &value);
                }
                Bytes::from(pairs.finish())
            }
            BodyTemplate::Json(json) => {
                self.render_json(json, shared, scenario, iteration_in_test)?
            }
        })
    }

    /// Renders a JSON body straight into one buffer, which becomes the body without a copy.
    fn render_json(
        &mut self,
        json: &JsonTemplate,
        shared: &Shared,
        scenario: &ScenarioContext,
        iteration_in_test: u64,
    ) -> Result<Bytes, String> {
        let mut body = Vec::with_capacity(json.estimated_length());
        let mut rng = self.rng.clone();
        let result = {
            let vars = self.resolver(shared, scenario, iteration_in_test);
            let mut with_calls = WithCalls::new(vars, || rng.u64(..));
            json.render_into(&mut with_calls, &mut body)
        };
        self.rng = rng;
        result.map_err(|e| e.to_string())?;
        Ok(Bytes::from(body))
    }

    async fn request(
        &mut self,
        request: &CompiledRequest,
        needs_body: bool,
        shared: &Shared,
        scenario: &ScenarioContext,
        group: &str,
        iteration_in_test: u64,
    ) -> Result<Outcome, String> {
        let mut target = self.build_url(request, shared, scenario, iteration_in_test)?;
        let mut headers = self.render_headers(request, shared, scenario, iteration_in_test)?;
        let mut body = self.render_body(request, shared, scenario, iteration_in_test)?;
        let mut method = request.method.clone();
        let custom: Cow<'_, [(String, String)]> = if request.tags.is_empty() {
            Cow::Borrowed(&scenario.tags)
        } else {
            Cow::Owned(scenario.tags.iter().chain(&request.tags).cloned().collect())
        };
        let explicit_cookie = headers.contains_key(http::header::COOKIE);
        // Credentials belong to the host the flow addressed; hops elsewhere go without them.
        // Kept from the first redirect on, so a request without one pays nothing for it.
        let mut first_target: Option<Target> = None;
        let mut redirects = 0;
        loop {
            // The first hop takes the rendered headers; a redirect hop renders them again
            // (redirects are rare, a header map copy per request is not).
            let mut hop_headers = if redirects == 0 {
                std::mem::take(&mut headers)
            } else {
                let mut again =
                    self.render_headers(request, shared, scenario, iteration_in_test)?;
                if method == Method::GET && request.method != Method::GET {
                    again.remove(http::header::CONTENT_TYPE);
                }
                again
            };
            let keeps_credentials = first_target
                .as_ref()
                .is_none_or(|first| redirect::keeps_credentials(first.host(), target.host()));
            if !keeps_credentials {
                redirect::strip_credentials(&mut hop_headers);
            }
            if (!explicit_cookie || !keeps_credentials)
                && let Some(cookie) = self
                    .cookies
                    .header_for(target.host(), target.path_and_query())
                && let Ok(value) = HeaderValue::from_str(&cookie)
            {
                hop_headers.insert(http::header::COOKIE, value);
            }
            let outgoing = OutgoingRequest {
                method: method.clone(),
                url: target.clone(),
                headers: hop_headers,
                body: body.clone(),
            };
            let options = SendOptions {
                timeout: request.timeout,
                keep_body: if needs_body {
                    BodyMode::Keep
                } else {
                    BodyMode::Discard
                },
            };
            let method_name = method.as_str();
            let cut = CutGuard::arm(
                shared,
                SampleTags {
                    name: Some(&request.name),
                    method: Some(method_name),
                    scenario: Some(&scenario.name),
                    group: Some(group),
                    custom: &custom,
                    ..SampleTags::default()
                },
                RequestLabel {
                    method: &method,
                    url: &request.url,
                    target: &target,
                },
            );
            let waiting = shared.in_flight.begin();
            let sent = self.client.send(outgoing, options).await;
            drop(waiting);
            cut.disarm();
            match sent {
                Ok(response) => {
                    let status = response.status.as_u16();
                    let expected = request.expected.contains(status);
                    let figures = http_figures(
                        &response.timings,
                        !expected,
                        response.bytes_sent,
                        response.bytes_received,
                    );
                    let tags = SampleTags {
                        name: Some(&request.name),
                        method: Some(method_name),
                        status: Some(status),
                        scenario: Some(&scenario.name),
                        group: Some(group),
                        check: None,
                        expected_response: Some(expected),
                        error_code: (status >= 400).then_some(1000 + u32::from(status)),
                        custom: &custom,
                    };
                    shared.recorder.http(&tags, &figures);
                    if !expected {
                        shared.error_log.record(tags.error_code, &request.name, || {
                            format!(
                                "{}: unexpected status {}",
                                RequestLabel {
                                    method: &method,
                                    url: &request.url,
                                    target: &target,
                                },
                                response.status
                            )
                        });
                    }
                    for value in response.headers.get_all(http::header::SET_COOKIE) {
                        if let Ok(text) = value.to_str() {
                            self.cookies
                                .store(text, target.host(), target.path_and_query());
                        }
                    }
                    let location = response
                        .headers
                        .get(http::header::LOCATION)
                        .and_then(|l| l.to_str().ok())
                        .map(str::to_string);
                    if response.status.is_redirection()
                        && redirects < request.max_redirects
                        && let Some(location) = location
                    {
                        redirects += 1;
                        first_target.get_or_insert_with(|| target.clone());
                        target = Target::join(&target, &location).map_err(|e| {
                            format!(
                                "{} redirected to an invalid Location: {e}",
                                RequestLabel {
                                    method: &method,
                                    url: &request.url,
                                    target: &target
                                }
                            )
                        })?;
                        if matches!(
                            response.status,
                            StatusCode::MOVED_PERMANENTLY
                                | StatusCode::FOUND
                                | StatusCode::SEE_OTHER
                        ) && method != Method::HEAD
                        {
                            method = Method::GET;
                            body = Bytes::new();
                        }
                        continue;
                    }
                    return Ok(Outcome {
                        status,
                        duration_ms: figures.duration,
                        headers: response.headers,
                        body: response.body,
                    });
                }
                Err(error) => {
                    let figures =
                        http_figures(&error.timings, true, error.bytes_sent, error.bytes_received);
                    let tags = SampleTags {
                        name: Some(&request.name),
                        method: Some(method_name),
                        status: Some(0),
                        scenario: Some(&scenario.name),
                        group: Some(group),
                        check: None,
                        expected_response: Some(false),
                        error_code: Some(error.error_code()),
                        custom: &custom,
                    };
                    shared.recorder.http(&tags, &figures);
                    shared.report_error(
                        &scenario.name,
                        Some(error.error_code()),
                        &request.name,
                        &format!(
                            "{}: {error}",
                            RequestLabel {
                                method: &method,
                                url: &request.url,
                                target: &target,
                            }
                        ),
                    );
                    return Ok(Outcome {
                        status: 0,
                        duration_ms: figures.duration,
                        headers: HeaderMap::new(),
                        body: Bytes::new(),
                    });
                }
            }
        }
    }

    fn after_response(
        &mut self,
        step: &CompiledStep,
        outcome: &Outcome,
        shared: &Shared,
        scenario: &ScenarioContext,
        group: &str,
        iteration_in_test: u64,
    ) -> Result<(), String> {
        let body_text = std::str::from_utf8(&outcome.body).ok();
        let json: Option<serde_json::Value> = if step.needs_body {
            serde_json::from_slice(&outcome.body).ok()
        } else {
            None
        };
        // Captures first, so checks may read what was captured.
        let mut missing = None;
        for capture in &step.captures {
            let found: Option<String> = match &capture.source {
                CaptureSource::Json(path) => json.as_ref().and_then(|value| {
                    path.query(value).first().map(|v| match v {
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                }),
                CaptureSource::Regex { regex, group } => body_text
                    .and_then(|text| regex.captures(text))
                    .and_then(|c| c.get(*group))
                    .map(|m| m.as_str().to_string()),
                CaptureSource::Header(name) => outcome
                    .headers
                    .get(name.as_str())
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string),
                CaptureSource::Cookie(name) => self.cookies.get(name).map(str::to_string),
            };
            match found {
                Some(value) => {
                    self.vars.insert(capture.name.clone(), value);
                }
                None if capture.optional => {
                    if let Some(default) = &capture.default {
                        let value = self.render(default, shared, scenario, iteration_in_test)?;
                        self.vars.insert(capture.name.clone(), value);
                    }
                }
                None => {
                    missing = Some(format!(
                        "capture {:?} found nothing in the response (status {}); the rest of the iteration is skipped (mark it optional: true to go on)",
                        capture.name, outcome.status
                    ));
                    break;
                }
            }
        }
        // Checks are recorded even when a capture failed: they describe this response.
        self.record_checks(
            step,
            outcome,
            body_text,
            json.as_ref(),
            shared,
            scenario,
            group,
            iteration_in_test,
        );
        missing.map_or(Ok(()), Err)
    }

    #[allow(clippy::too_many_arguments)]
    fn record_checks(
        &self,
        step: &CompiledStep,
        outcome: &Outcome,
        body: Option<&str>,
        json: Option<&serde_json::Value>,
        shared: &Shared,
        scenario: &ScenarioContext,
        group: &str,
        iteration_in_test: u64,
    ) {
        for check in &step.checks {
            let mut view = ResponseView {
                status: outcome.status,
                duration_ms: outcome.duration_ms,
                body,
                headers: &outcome.headers,
                cookies: &self.cookies,
                json,
                resolver: WithCalls::new(
                    self.resolver(shared, scenario, iteration_in_test),
                    || fastrand::u64(..),
                ),
            };
            // k6: an exception in a check counts as a failed check.
            let passed = check.expr.evaluate(&mut view).unwrap_or(false);
            let tags = SampleTags {
                scenario: Some(&scenario.name),
                group: Some(group),
                check: Some(&check.name),
                custom: &scenario.tags,
                ..SampleTags::default()
            };
            shared
                .recorder
                .add(Metric::Checks, &tags, if passed { 1.0 } else { 0.0 });
        }
    }
}

/// A rendered URL that is not one, named by its template (the rendered text may carry tokens).
fn bad_url(template: &Template, error: &crate::http::HttpError) -> String {
    format!(
        "url {:?} rendered to an invalid URL: {error}",
        template.to_string()
    )
}
