//! Flows made ready to send: the model's flows (everything already parsed by
//! `stampede_crds::model::flow`) with the HTTP pieces added — methods, header names, literal
//! bodies rendered once, a cell for each literal URL's resolved target — so an iteration only
//! renders and sends.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderName, Method};
use stampede_crds::expr::Expr;
use stampede_crds::model::flow::{self as model, Body, Flows};
use stampede_crds::spec::LoadTestSpec;
use stampede_crds::template::Template;
use stampede_crds::validate::Problem;

pub use stampede_crds::model::flow::{
    Capture, CaptureSource, Check, DEFAULT_MAX_REDIRECTS, DEFAULT_TIMEOUT, ExpectedStatuses,
    FlowNames, JsonTemplate,
};

/// Why flows could not be prepared: the first problem, with the others after it (validation
/// reports these first; this guards the engine against an unvalidated spec).
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct CompileError {
    /// Field path.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl From<Vec<Problem>> for CompileError {
    fn from(problems: Vec<Problem>) -> Self {
        let mut listed = problems.iter();
        let Some(first) = listed.next() else {
            return CompileError {
                path: "spec".to_string(),
                message: "does not compile".to_string(),
            };
        };
        let mut message = first.message.clone();
        for other in listed {
            message.push_str("; ");
            message.push_str(&other.to_string());
        }
        CompileError {
            path: first.path.to_string(),
            message,
        }
    }
}

/// A request body to render.
#[derive(Debug, Clone)]
pub enum BodyTemplate {
    /// The same bytes every time (no body, or a body without references), shared by every
    /// request.
    Fixed(Bytes),
    /// JSON with references, rendered straight into the body buffer.
    Json(JsonTemplate),
    /// Form fields.
    Form(Vec<(String, Template)>),
    /// Raw text.
    Raw(Template),
}

/// A request ready to render and send.
#[derive(Debug, Clone)]
pub struct CompiledRequest {
    /// Method.
    pub method: Method,
    /// URL template (absolute, or relative to the base URL).
    pub url: Template,
    /// Headers, defaults first, then the request's own (which override), then the body's
    /// Content-Type unless one is set.
    pub headers: Vec<(HeaderName, Template)>,
    /// Query parameters.
    pub query: Vec<(String, Template)>,
    /// Body.
    pub body: BodyTemplate,
    /// Timeout.
    pub timeout: Duration,
    /// Expected statuses.
    pub expected: ExpectedStatuses,
    /// Redirects to follow.
    pub max_redirects: u32,
    /// The `name` tag.
    pub name: String,
    /// Extra tags (request `tags` other than name).
    pub tags: Vec<(String, String)>,
    /// The resolved target of a literal URL, set on first use.
    pub fixed_target: OnceLock<crate::http::Target>,
}

/// What a step does.
#[derive(Debug, Clone)]
pub enum Action {
    /// Send a request.
    Request(Box<CompiledRequest>),
    /// Pause for a fixed or random time (min, max).
    Sleep(Duration, Duration),
    /// Run a group of steps.
    Group {
        /// The `group` tag of the steps inside (`::a::b`).
        tag: String,
        /// The steps.
        steps: Vec<CompiledStep>,
    },
}

/// A step ready to run.
#[derive(Debug, Clone)]
pub struct CompiledStep {
    /// What it does.
    pub action: Action,
    /// Checks.
    pub checks: Vec<Check>,
    /// Captures.
    pub captures: Vec<Capture>,
    /// Condition.
    pub condition: Option<Expr>,
    /// Whether checks or captures read the body (it is kept, and parsed as JSON, only then).
    pub needs_body: bool,
}

/// A flow ready to run.
#[derive(Debug, Clone, Default)]
pub struct CompiledFlow {
    /// The steps.
    pub steps: Vec<CompiledStep>,
}

/// Every flow of a test ready to run, with the names their samples carry.
#[derive(Debug, Default)]
pub struct CompiledFlows {
    /// `spec.setup`.
    pub setup: CompiledFlow,
    /// `spec.teardown`.
    pub teardown: CompiledFlow,
    /// `spec.flows`, by name.
    pub flows: HashMap<String, Arc<CompiledFlow>>,
    /// Request, check and group names, in flow order.
    pub names: FlowNames,
}

/// Prepares the model's flows.
pub fn compile(model: &Flows) -> Result<CompiledFlows, CompileError> {
    let flow = |flow: &model::Flow, path: String| {
        Ok::<_, CompileError>(CompiledFlow {
            steps: steps(&flow.steps, &path)?,
        })
    };
    let mut flows = HashMap::with_capacity(model.flows.len());
    for (name, steps) in &model.flows {
        flows.insert(
            name.clone(),
            Arc::new(flow(steps, format!("spec.flows.{name}"))?),
        );
    }
    Ok(CompiledFlows {
        setup: flow(&model.setup, "spec.setup".to_string())?,
        teardown: flow(&model.teardown, "spec.teardown".to_string())?,
        flows,
        names: model.names(),
    })
}

/// Compiles the flows of `spec` into the model, then prepares them.
pub fn compile_spec(spec: &LoadTestSpec) -> Result<CompiledFlows, CompileError> {
    compile(&model::compile(spec)?)
}

fn steps(steps: &[model::Step], path: &str) -> Result<Vec<CompiledStep>, CompileError> {
    steps
        .iter()
        .enumerate()
        .map(|(index, step)| self::step(step, &format!("{path}[{index}]")))
        .collect()
}

fn step(step: &model::Step, path: &str) -> Result<CompiledStep, CompileError> {
    let action = match &step.action {
        model::Action::Request(request) => Action::Request(Box::new(self::request(
            request,
            &format!("{path}.request"),
        )?)),
        model::Action::Sleep(sleep) => Action::Sleep(sleep.min, sleep.max),
        model::Action::Group(group) => Action::Group {
            tag: group.tag.clone(),
            steps: steps(&group.steps, &format!("{path}.steps"))?,
        },
    };
    Ok(CompiledStep {
        action,
        checks: step.checks.clone(),
        captures: step.captures.clone(),
        condition: step.condition.clone(),
        needs_body: step.reads_response_body(),
    })
}

fn request(request: &model::Request, path: &str) -> Result<CompiledRequest, CompileError> {
    let mut headers = Vec::with_capacity(request.headers.len() + 1);
    for (name, value) in &request.headers {
        // The model admits only RFC 9110 tokens, which are header names.
        let header = HeaderName::from_bytes(name.as_bytes()).map_err(|error| CompileError {
            path: format!("{path}.headers.{name}"),
            message: error.to_string(),
        })?;
        headers.push((header, value.clone()));
    }
    if let Some(content_type) = request.body.content_type()
        && !headers
            .iter()
            .any(|(name, _)| name == http::header::CONTENT_TYPE)
    {
        headers.push((http::header::CONTENT_TYPE, Template::literal(content_type)));
    }
    Ok(CompiledRequest {
        method: method(request.method),
        url: request.url.clone(),
        headers,
        query: request.query.clone(),
        body: body(&request.body),
        timeout: request.timeout,
        expected: request.expected_statuses.clone(),
        max_redirects: request.max_redirects,
        name: request.name.clone(),
        tags: request.tags.clone(),
        fixed_target: OnceLock::new(),
    })
}

fn method(method: model::Method) -> Method {
    match method {
        model::Method::Get => Method::GET,
        model::Method::Post => Method::POST,
        model::Method::Put => Method::PUT,
        model::Method::Patch => Method::PATCH,
        model::Method::Delete => Method::DELETE,
        model::Method::Head => Method::HEAD,
        model::Method::Options => Method::OPTIONS,
    }
}

/// A body without references becomes its bytes, so sending it allocates nothing.
fn body(body: &Body) -> BodyTemplate {
    match body {
        Body::None => BodyTemplate::Fixed(Bytes::new()),
        Body::Json(json) => match json.literal_bytes() {
            Some(bytes) => BodyTemplate::Fixed(Bytes::from(bytes)),
            None => BodyTemplate::Json(json.clone()),
        },
        Body::Form(fields) if body.is_literal() => {
            let mut pairs = form_urlencoded::Serializer::new(String::new());
            for (key, value) in fields {
                pairs.append_pair(key, value.as_literal().unwrap_or_default());
            }
            BodyTemplate::Fixed(Bytes::from(pairs.finish()))
        }
        Body::Form(fields) => BodyTemplate::Form(fields.clone()),
        Body::Raw(text) => match text.as_literal() {
            Some(literal) => BodyTemplate::Fixed(Bytes::from(literal.to_string())),
            None => BodyTemplate::Raw(text.clone()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compiled(yaml_spec: &str) -> CompiledFlows {
        let yaml = format!(
            "apiVersion: stampede.dev/v1alpha1\nkind: LoadTest\nmetadata: {{name: t}}\nspec:\n{yaml_spec}"
        );
        let test: stampede_crds::LoadTest = serde_yaml_ng::from_str(&yaml).unwrap();
        compile_spec(&test.spec).unwrap()
    }

    fn only_request(flows: &CompiledFlows) -> &CompiledRequest {
        match &flows.flows["f"].steps[0].action {
            Action::Request(request) => request,
            other => panic!("{other:?}"),
        }
    }

    fn fixed(body: &BodyTemplate) -> &[u8] {
        match body {
            BodyTemplate::Fixed(bytes) => bytes,
            other => panic!("not fixed: {other:?}"),
        }
    }

    #[test]
    fn literal_bodies_are_rendered_once() {
        let flows = compiled(
            "  flows: {f: [{request: {method: post, url: \"http://x/\", json: {b: [1, \"$${x}\"], a: null}}}]}\n",
        );
        let request = only_request(&flows);
        assert_eq!(request.method, Method::POST);
        assert_eq!(fixed(&request.body), br#"{"a":null,"b":[1,"${x}"]}"#);
        let flows = compiled(
            "  flows: {f: [{request: {url: \"http://x/\", form: {q: \"a b\", n: \"1&2\"}}}]}\n",
        );
        assert_eq!(fixed(&only_request(&flows).body), b"n=1%262&q=a+b");
        let flows = compiled("  flows: {f: [{request: {url: \"http://x/\"}}]}\n");
        assert!(fixed(&only_request(&flows).body).is_empty());
    }

    #[test]
    fn a_body_implies_its_content_type_unless_a_header_sets_one() {
        let flows = compiled(
            "  flows: {f: [{request: {method: POST, url: \"http://x/\", json: {u: \"${vu}\"}}}]}\n",
        );
        let request = only_request(&flows);
        assert!(matches!(request.body, BodyTemplate::Json(_)));
        let content_type: Vec<_> = request
            .headers
            .iter()
            .filter(|(name, _)| name == http::header::CONTENT_TYPE)
            .map(|(_, value)| value.to_string())
            .collect();
        assert_eq!(content_type, ["application/json"]);
        let flows = compiled(
            "  defaults: {headers: {content-TYPE: text/plain}}\n  flows: {f: [{request: {url: \"http://x/\", json: {}}}]}\n",
        );
        let request = only_request(&flows);
        assert_eq!(request.headers.len(), 1);
        assert_eq!(request.headers[0].1.as_literal(), Some("text/plain"));
    }

    #[test]
    fn problems_become_one_error_naming_the_first_path_and_the_rest() {
        let error = CompileError::from(vec![
            Problem::new(
                stampede_crds::path::FieldPath::keys(&["spec", "a"]),
                "first",
            ),
            Problem::new(
                stampede_crds::path::FieldPath::keys(&["spec", "b"]),
                "second",
            ),
        ]);
        assert_eq!(error.to_string(), "spec.a: first; spec.b: second");
    }
}
