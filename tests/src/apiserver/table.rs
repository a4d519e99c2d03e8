//! `kubectl get` output: objects as meta.k8s.io/v1 Tables, with a CRD's additionalPrinterColumns
//! (evaluated server-side like the real TableConvertor) or the built-in kinds' usual columns.

use serde_json::{Value, json};
use serde_json_path::JsonPath;

use super::meta;
use super::registry::{PrinterColumn, ResourceType};

/// What a row's `object` carries (`includeObject` query parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncludeObject {
    /// Nothing.
    None,
    /// PartialObjectMetadata (the default).
    Metadata,
    /// The whole object.
    Object,
}

impl IncludeObject {
    /// Parses the query parameter value.
    pub fn parse(value: Option<&str>) -> IncludeObject {
        match value {
            Some("None") => IncludeObject::None,
            Some("Object") => IncludeObject::Object,
            _ => IncludeObject::Metadata,
        }
    }
}

/// A Table of `objects`; `resource_version` goes in the list metadata.
pub fn table(
    resource: &ResourceType,
    objects: &[Value],
    include: IncludeObject,
    resource_version: Option<u64>,
) -> Value {
    if resource.group.is_empty() && resource.plural == "events" {
        return events_table(objects, include, resource_version);
    }
    let columns = columns(resource);
    let definitions: Vec<Value> = if resource.is_custom() {
        custom_definitions(&columns)
    } else {
        std::iter::once(json!({
            "name": "Name", "type": "string", "format": "name", "priority": 0,
            "description": "Name must be unique within a namespace."
        }))
        .chain(columns.iter().map(|c| {
            json!({"name": c.name, "type": if c.column_type == "date" { "string" } else { c.column_type.as_str() },
                   "format": "",
                   "priority": c.priority, "description": c.description})
        }))
        .collect()
    };
    let rows: Vec<Value> = objects
        .iter()
        .map(|object| row(resource, &columns, object, include))
        .collect();
    let mut metadata = json!({});
    if let Some(rv) = resource_version {
        metadata["resourceVersion"] = json!(rv.to_string());
    }
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": definitions,
        "rows": rows,
    })
}

/// The column definitions of a custom resource's table, as apiextensions' table convertor
/// writes them: ObjectMeta's description of the name, each printer column's type and format as
/// declared, and a description naming its JSONPath when the CRD gives none.
fn custom_definitions(columns: &[PrinterColumn]) -> Vec<Value> {
    const NAME_DESCRIPTION: &str = "Name must be unique within a namespace. Is required when \
        creating resources, although some resources may allow a client to request the generation \
        of an appropriate name automatically. Name is primarily intended for creation idempotence \
        and configuration definition. Cannot be updated. More info: \
        https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";
    std::iter::once(json!({
        "name": "Name", "type": "string", "format": "name", "priority": 0,
        "description": NAME_DESCRIPTION
    }))
    .chain(columns.iter().map(|c| {
        let description = if c.description.is_empty() {
            format!(
                "Custom resource definition column (in JSONPath format): {}",
                c.json_path
            )
        } else {
            c.description.clone()
        };
        json!({"name": c.name, "type": c.column_type, "format": c.format,
               "priority": c.priority, "description": description})
    }))
    .collect()
}

/// `kubectl get events`: kube-apiserver's event columns, with the name last (wide only).
fn events_table(objects: &[Value], include: IncludeObject, resource_version: Option<u64>) -> Value {
    let definitions: Vec<Value> = [
        ("Last Seen", 0, "Time since the event was last seen."),
        ("Type", 0, "Type of this event (Normal, Warning)."),
        ("Reason", 0, "Why the action was taken."),
        ("Object", 0, "The object this event is about."),
        (
            "Subobject",
            1,
            "The part of the object this event is about.",
        ),
        ("Source", 1, "The component reporting this event."),
        (
            "Message",
            0,
            "A human-readable description of the status of this operation.",
        ),
        ("First Seen", 1, "Time since the event was first seen."),
        ("Count", 1, "How many times this event happened."),
        ("Name", 1, "Name must be unique within a namespace."),
    ]
    .iter()
    .map(|(name, priority, description)| {
        json!({"name": name, "type": "string", "format": if *name == "Name" { "name" } else { "" },
               "priority": priority, "description": description})
    })
    .collect();
    let text = |event: &Value, pointer: &str| -> String {
        event
            .pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let since = |timestamp: String| -> String {
        meta::seconds_since(&timestamp).map_or_else(|| "<unknown>".into(), meta::human_duration)
    };
    let rows: Vec<Value> = objects
        .iter()
        .map(|event| {
            let first_set = |pointers: &[&str]| {
                pointers
                    .iter()
                    .map(|p| text(event, p))
                    .find(|t| !t.is_empty())
                    .unwrap_or_default()
            };
            let first = first_set(&["/firstTimestamp", "/eventTime", "/metadata/creationTimestamp"]);
            let last = first_set(&[
                "/series/lastObservedTime",
                "/lastTimestamp",
                "/eventTime",
                "/metadata/creationTimestamp",
            ]);
            let count = event
                .pointer("/series/count")
                .or_else(|| event.get("count"))
                .and_then(Value::as_i64)
                .unwrap_or(1);
            let source = match (
                text(event, "/source/component"),
                text(event, "/reportingComponent"),
            ) {
                (component, _) if !component.is_empty() => component,
                (_, reporting) => reporting,
            };
            let object = format!(
                "{}/{}",
                text(event, "/involvedObject/kind").to_lowercase(),
                text(event, "/involvedObject/name")
            );
            let cells = json!([
                since(last),
                text(event, "/type"),
                text(event, "/reason"),
                object,
                text(event, "/involvedObject/fieldPath"),
                source,
                text(event, "/message").trim(),
                since(first),
                count.to_string(),
                meta::meta_str(event, "name"),
            ]);
            let mut row = json!({"cells": cells});
            match include {
                IncludeObject::None => {}
                IncludeObject::Metadata => {
                    row["object"] = json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                                           "metadata": event.get("metadata").cloned().unwrap_or(json!({}))});
                }
                IncludeObject::Object => row["object"] = event.clone(),
            }
            row
        })
        .collect();
    let mut metadata = json!({});
    if let Some(rv) = resource_version {
        metadata["resourceVersion"] = json!(rv.to_string());
    }
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": metadata,
           "columnDefinitions": definitions, "rows": rows})
}

fn row(
    resource: &ResourceType,
    columns: &[PrinterColumn],
    object: &Value,
    include: IncludeObject,
) -> Value {
    let cells: Vec<Value> = std::iter::once(json!(meta::meta_str(object, "name")))
        .chain(columns.iter().map(|c| cell(resource, c, object)))
        .collect();
    let mut row = json!({"cells": cells});
    match include {
        IncludeObject::None => {}
        IncludeObject::Metadata => {
            row["object"] = json!({
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": object.get("metadata").cloned().unwrap_or(json!({})),
            });
        }
        IncludeObject::Object => row["object"] = object.clone(),
    }
    row
}

/// The non-name columns of a resource's table.
fn columns(resource: &ResourceType) -> Vec<PrinterColumn> {
    let column = |name: &str, column_type: &str, json_path: &str| PrinterColumn {
        name: name.into(),
        column_type: column_type.into(),
        json_path: json_path.into(),
        priority: 0,
        description: String::new(),
        format: String::new(),
    };
    let age = column("Age", "date", ".metadata.creationTimestamp");
    if resource.is_custom() {
        // A CRD without printer columns gets an Age column, as on a real server.
        if resource.printer_columns.is_empty() {
            return vec![age];
        }
        return resource.printer_columns.clone();
    }
    let mut columns = match resource.plural.as_str() {
        "pods" => vec![
            column("Ready", "builtin:ready", ""),
            column("Status", "builtin:pod-status", ""),
            column("Restarts", "builtin:restarts", ""),
        ],
        "jobs" => vec![
            column("Status", "builtin:job-status", ""),
            column("Completions", "builtin:completions", ""),
            column("Duration", "builtin:job-duration", ""),
        ],
        "configmaps" => vec![column("Data", "builtin:data-count", "")],
        "secrets" => vec![
            column("Type", "string", ".type"),
            column("Data", "builtin:data-count", ""),
        ],
        "namespaces" => vec![column("Status", "string", ".status.phase")],
        "serviceaccounts" => vec![column("Secrets", "builtin:secrets-count", "")],
        "customresourcedefinitions" => {
            return vec![column(
                "Created At",
                "string",
                ".metadata.creationTimestamp",
            )];
        }
        "leases" => vec![column("Holder", "string", ".spec.holderIdentity")],
        _ => Vec::new(),
    };
    columns.push(age);
    columns
}

fn cell(resource: &ResourceType, column: &PrinterColumn, object: &Value) -> Value {
    if let Some(builtin) = column.column_type.strip_prefix("builtin:") {
        return builtin_cell(builtin, object);
    }
    let Some(value) = evaluate(&column.json_path, object) else {
        // A missing value prints as an empty cell (kubectl shows `<none>` for null).
        return Value::Null;
    };
    match column.column_type.as_str() {
        "date" => match value.as_str().and_then(meta::seconds_since) {
            Some(seconds) => json!(meta::human_duration(seconds)),
            None => Value::Null,
        },
        "integer" | "number" | "boolean" => value,
        _ => match value {
            Value::String(_) => value,
            other if resource.is_custom() => json!(other.to_string()),
            other => other,
        },
    }
}

/// Evaluates a Kubernetes-style JSONPath (`.status.phase`, `{.status.phase}`) on `object`,
/// giving the first match.
fn evaluate(json_path: &str, object: &Value) -> Option<Value> {
    let trimmed = json_path
        .trim()
        .trim_start_matches('{')
        .trim_end_matches('}');
    let path = JsonPath::parse(&format!("${trimmed}")).ok()?;
    path.query(object).first().cloned()
}

fn builtin_cell(which: &str, object: &Value) -> Value {
    let statuses = object
        .pointer("/status/containerStatuses")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    match which {
        "ready" => {
            let total = object
                .pointer("/spec/containers")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            let ready = statuses
                .iter()
                .filter(|s| s.get("ready").and_then(Value::as_bool) == Some(true))
                .count();
            json!(format!("{ready}/{total}"))
        }
        "pod-status" => json!(pod_status(object, &statuses)),
        "restarts" => json!(
            statuses
                .iter()
                .filter_map(|s| s.get("restartCount").and_then(Value::as_i64))
                .sum::<i64>()
        ),
        "job-status" => json!(job_status(object)),
        "completions" => {
            let succeeded = object
                .pointer("/status/succeeded")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            let completions = object
                .pointer("/spec/completions")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            json!(format!("{succeeded}/{completions}"))
        }
        "job-duration" => {
            let start = object.pointer("/status/startTime").and_then(Value::as_str);
            let end = object
                .pointer("/status/completionTime")
                .and_then(Value::as_str);
            match (
                start.and_then(meta::seconds_since),
                end.and_then(meta::seconds_since),
            ) {
                (Some(s), Some(e)) => json!(meta::human_duration(s - e)),
                (Some(s), None) => json!(meta::human_duration(s)),
                _ => json!(""),
            }
        }
        "data-count" => json!(
            ["data", "binaryData", "stringData"]
                .iter()
                .filter_map(|f| object.get(f).and_then(Value::as_object).map(|m| m.len()))
                .sum::<usize>()
        ),
        "secrets-count" => json!(
            object
                .get("secrets")
                .and_then(Value::as_array)
                .map_or(0, Vec::len)
        ),
        _ => Value::Null,
    }
}

/// The STATUS column of `kubectl get pods`: a waiting/terminated reason, Terminating, or the phase.
fn pod_status(pod: &Value, statuses: &[Value]) -> String {
    if meta::is_deleting(pod) {
        return "Terminating".into();
    }
    for status in statuses {
        for state in ["waiting", "terminated"] {
            if let Some(reason) = status
                .pointer(&format!("/state/{state}/reason"))
                .and_then(Value::as_str)
            {
                return reason.to_string();
            }
        }
    }
    pod.pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or("Pending")
        .to_string()
}

/// The STATUS column of `kubectl get jobs` (1.30+): Complete, Failed, Suspended or Running.
fn job_status(job: &Value) -> String {
    let conditions = job
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let is_true = |kind: &str| {
        conditions.iter().any(|c| {
            c.get("type").and_then(Value::as_str) == Some(kind)
                && c.get("status").and_then(Value::as_str) == Some("True")
        })
    };
    if is_true("Complete") {
        "Complete".into()
    } else if is_true("Failed") {
        "Failed".into()
    } else if job.pointer("/spec/suspend").and_then(Value::as_bool) == Some(true) {
        "Suspended".into()
    } else {
        "Running".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubernetes_json_paths_evaluate() {
        let object = json!({"status": {"phase": "Running", "conditions": [
            {"type": "Complete", "status": "False"}, {"type": "Passed", "status": "True"}]}});
        assert_eq!(evaluate(".status.phase", &object), Some(json!("Running")));
        assert_eq!(
            evaluate(".status.conditions[?(@.type==\"Passed\")].status", &object),
            Some(json!("True"))
        );
        assert_eq!(evaluate(".status.missing", &object), None);
    }
}
