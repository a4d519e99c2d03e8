//! API errors and the `Status` bodies kube-apiserver returns for them.

use serde_json::{Value, json};

/// An error answered with a `Status` object, shaped like the real API server's.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// HTTP status code (also `Status.code`).
    pub code: u16,
    /// `Status.reason`: NotFound, AlreadyExists, Conflict, Invalid, Gone, Expired, ...
    pub reason: &'static str,
    /// `Status.message`.
    pub message: String,
    /// `Status.details`, when the real server fills it in.
    pub details: Option<Value>,
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }

    fn with_details(mut self, group: &str, kind: &str, name: &str) -> Self {
        let mut details = json!({"name": name, "kind": kind});
        if !group.is_empty() {
            details["group"] = json!(group);
        }
        self.details = Some(details);
        self
    }

    /// `pods "x" not found` (the resource part is `plural` or `plural.group`).
    pub fn not_found(group: &str, plural: &str, name: &str) -> Self {
        let resource = qualified(group, plural);
        ApiError::new(404, "NotFound", format!("{resource} \"{name}\" not found"))
            .with_details(group, plural, name)
    }

    /// A path the server does not serve.
    pub fn no_route() -> Self {
        ApiError::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
    }

    /// `pods "x" already exists`.
    pub fn already_exists(group: &str, plural: &str, name: &str) -> Self {
        let resource = qualified(group, plural);
        ApiError::new(
            409,
            "AlreadyExists",
            format!("{resource} \"{name}\" already exists"),
        )
        .with_details(group, plural, name)
    }

    /// The optimistic-concurrency conflict of a stale resourceVersion.
    pub fn stale(group: &str, plural: &str, name: &str) -> Self {
        let resource = qualified(group, plural);
        ApiError::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {resource} \"{name}\": the object has been \
                 modified; please apply your changes to the latest version and try again"
            ),
        )
        .with_details(group, plural, name)
    }

    /// A 409 Conflict with a message of the caller's (server-side apply conflicts).
    pub fn conflict(message: String, group: &str, plural: &str, name: &str) -> Self {
        ApiError::new(409, "Conflict", message).with_details(group, plural, name)
    }

    /// 422 Invalid, with one cause per field error.
    pub fn invalid(
        message: String,
        group: &str,
        kind: &str,
        name: &str,
        causes: Vec<Value>,
    ) -> Self {
        let mut error = ApiError::new(422, "Invalid", message).with_details(group, kind, name);
        if let Some(details) = error.details.as_mut() {
            details["causes"] = Value::Array(causes);
        }
        error
    }

    /// 400 BadRequest.
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(400, "BadRequest", message)
    }

    /// 401 Unauthorized: no or an unknown bearer token.
    pub fn unauthorized() -> Self {
        ApiError::new(401, "Unauthorized", "Unauthorized")
    }

    /// 403 Forbidden (e.g. creating in a terminating namespace).
    pub fn forbidden(message: impl Into<String>) -> Self {
        ApiError::new(403, "Forbidden", message)
    }

    /// 405 MethodNotAllowed.
    pub fn method_not_allowed() -> Self {
        ApiError::new(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        )
    }

    /// 415 UnsupportedMediaType (e.g. strategic merge patch on a custom resource).
    pub fn unsupported_media_type(custom_resource: bool) -> Self {
        let strategic = if custom_resource {
            ""
        } else {
            ", application/strategic-merge-patch+json"
        };
        ApiError::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: \
                 application/json-patch+json, application/merge-patch+json, \
                 application/apply-patch+yaml{strategic}"
            ),
        )
    }

    /// 410 Gone for a resourceVersion older than the kept history.
    pub fn expired(requested: u64, oldest: u64) -> Self {
        ApiError::new(
            410,
            "Expired",
            format!("too old resource version: {requested} ({oldest})"),
        )
    }

    /// The `Status` object of this error.
    pub fn status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(details) = &self.details {
            status["details"] = details.clone();
        }
        status
    }
}

/// `plural` for the core group, `plural.group` otherwise — how error messages name resources.
pub fn qualified(group: &str, plural: &str) -> String {
    if group.is_empty() {
        plural.to_string()
    } else {
        format!("{plural}.{group}")
    }
}

/// The `Status` of a successful delete that removed the object at once.
pub fn deleted_status(group: &str, plural: &str, name: &str, uid: &str) -> Value {
    let mut details = json!({"name": name, "kind": plural, "uid": uid});
    if !group.is_empty() {
        details["group"] = json!(group);
    }
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details})
}
