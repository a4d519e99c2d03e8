//! Field errors as kube-apiserver prints them (`field.Error` of k8s.io/apimachinery): a path, an
//! error type, the bad value (or none) and a detail, joined as `path: Type label: value: detail`.

/// One field-level problem, shaped like a Kubernetes StatusCause / field.Error.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    /// Field path like the API server prints it: `spec.replicas`, `spec.items[0].name`. Map keys
    /// are joined with a dot (`spec.map.key`) in OpenAPI schema errors and written as `[key]`
    /// in list-type, embedded-resource and CEL errors, as kube-apiserver does. The notice that
    /// CEL rules were skipped has the field `<nil>`, as kube-apiserver prints it.
    pub field: String,
    /// k8s cause type: "FieldValueRequired", "FieldValueInvalid", "FieldValueNotSupported",
    /// "FieldValueTypeInvalid", "FieldValueTooLong", "FieldValueTooMany",
    /// "FieldValueDuplicate", "FieldValueForbidden", "InternalError".
    pub reason: String,
    /// The full message as kube-apiserver prints a field error, e.g.
    /// `spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer: "string"`,
    /// `spec.name: Required value`, `spec.mode: Unsupported value: "x": supported values: "a", "b"`,
    /// `spec.count: Invalid value: 0: spec.count in body should be greater than or equal to 1`.
    pub message: String,
}

/// The `field.ErrorType`s the stand-in produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorType {
    /// `Required value`.
    Required,
    /// `Invalid value`.
    Invalid,
    /// `Invalid value` with the cause type FieldValueTypeInvalid.
    TypeInvalid,
    /// `Unsupported value`.
    NotSupported,
    /// `Duplicate value`.
    Duplicate,
    /// `Forbidden`.
    Forbidden,
    /// `Too long`.
    TooLong,
    /// `Too many`.
    TooMany,
    /// `Internal error`.
    Internal,
}

impl ErrorType {
    /// The StatusCause type.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Required => "FieldValueRequired",
            Self::Invalid => "FieldValueInvalid",
            Self::TypeInvalid => "FieldValueTypeInvalid",
            Self::NotSupported => "FieldValueNotSupported",
            Self::Duplicate => "FieldValueDuplicate",
            Self::Forbidden => "FieldValueForbidden",
            Self::TooLong => "FieldValueTooLong",
            Self::TooMany => "FieldValueTooMany",
            Self::Internal => "InternalError",
        }
    }

    /// The words `field.Error` starts its body with.
    pub fn label(self) -> &'static str {
        match self {
            Self::Required => "Required value",
            Self::Invalid | Self::TypeInvalid => "Invalid value",
            Self::NotSupported => "Unsupported value",
            Self::Duplicate => "Duplicate value",
            Self::Forbidden => "Forbidden",
            Self::TooLong => "Too long",
            Self::TooMany => "Too many",
            Self::Internal => "Internal error",
        }
    }
}

impl FieldError {
    /// An error whose body shows `value` (already rendered the Go way) when there is one:
    /// `Invalid value: "x": detail`, or `Invalid value: detail` for an omitted value.
    pub fn new(field: &str, kind: ErrorType, value: Option<&str>, detail: &str) -> Self {
        let mut body = kind.label().to_string();
        if let Some(value) = value {
            body.push_str(": ");
            body.push_str(value);
        }
        if !detail.is_empty() {
            body.push_str(": ");
            body.push_str(detail);
        }
        FieldError {
            field: field.to_string(),
            reason: kind.reason().to_string(),
            message: format!("{field}: {body}"),
        }
    }

    /// `field.Required(path, detail)`.
    pub fn required(field: &str, detail: &str) -> Self {
        Self::new(field, ErrorType::Required, None, detail)
    }

    /// `field.Forbidden(path, detail)`.
    pub fn forbidden(field: &str, detail: &str) -> Self {
        Self::new(field, ErrorType::Forbidden, None, detail)
    }

    /// `field.Invalid(path, value, detail)` with the value rendered.
    pub fn invalid(field: &str, value: &str, detail: &str) -> Self {
        Self::new(field, ErrorType::Invalid, Some(value), detail)
    }

    /// `field.NotSupported(path, value, supported)`: the supported values quoted, in order.
    pub fn not_supported(field: &str, value: &str, supported: &[&str]) -> Self {
        let quoted: Vec<String> = supported
            .iter()
            .map(|s| super::render::go_quote(s))
            .collect();
        let detail = format!("supported values: {}", quoted.join(", "));
        Self::new(field, ErrorType::NotSupported, Some(value), &detail)
    }

    /// Whether this is one of the error types after which kube-apiserver does not run CEL rules
    /// (its `hasBlockingErr`): the data may not even have the shape the rules were written for.
    pub fn blocks_cel(&self) -> bool {
        [
            ErrorType::NotSupported,
            ErrorType::Required,
            ErrorType::TooLong,
            ErrorType::TooMany,
            ErrorType::TypeInvalid,
        ]
        .iter()
        .any(|kind| kind.reason() == self.reason)
    }

    /// The message without the `field: ` prefix, as a Status cause carries it.
    pub fn cause_message(&self) -> &str {
        self.message
            .strip_prefix(&self.field)
            .and_then(|rest| rest.strip_prefix(": "))
            .unwrap_or(&self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_follow_the_error_type() {
        assert_eq!(
            FieldError::required("spec.a", "").message,
            "spec.a: Required value"
        );
        assert_eq!(
            FieldError::invalid("spec.a", "\"x\"", "bad").message,
            r#"spec.a: Invalid value: "x": bad"#
        );
        assert_eq!(
            FieldError::new("spec.l", ErrorType::Invalid, None, "too many").message,
            "spec.l: Invalid value: too many"
        );
        assert_eq!(
            FieldError::new("spec.o", ErrorType::Duplicate, None, "").message,
            "spec.o: Duplicate value"
        );
        assert_eq!(
            FieldError::not_supported("spec.t", "\"x\"", &["a", "b"]).message,
            r#"spec.t: Unsupported value: "x": supported values: "a", "b""#
        );
        let forbidden = FieldError::forbidden("spec.x", "no");
        assert_eq!(forbidden.cause_message(), "Forbidden: no");
        assert!(!forbidden.blocks_cel());
        assert!(FieldError::required("spec.a", "").blocks_cel());
    }
}
