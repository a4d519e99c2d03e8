//! The fields the CRD schema allows at a path, for did-you-mean hints on unknown fields.

use std::sync::LazyLock;

use serde_json::Value;
use stampede_crds::path::Segment;

/// The LoadTest's OpenAPI schema (from the generated CRD), with `apiVersion`, `kind` and the
/// standard object metadata fields it leaves implicit.
static SCHEMA: LazyLock<Value> = LazyLock::new(|| {
    let crd = stampede_crds::crd::definition();
    crd.spec
        .versions
        .first()
        .and_then(|version| version.schema.as_ref())
        .and_then(|schema| schema.open_api_v3_schema.as_ref())
        .and_then(|schema| serde_json::to_value(schema).ok())
        .unwrap_or(Value::Null)
});

const METADATA_FIELDS: [&str; 6] = [
    "name",
    "namespace",
    "labels",
    "annotations",
    "generateName",
    "uid",
];

/// The property names allowed directly under `parent`, sorted; empty when unknown.
pub fn known_fields(parent: &[Segment]) -> Vec<String> {
    if parent.len() == 1 && parent[0] == Segment::Key("metadata".to_string()) {
        return METADATA_FIELDS.iter().map(|f| (*f).to_string()).collect();
    }
    // Group steps are open in the schema (it cannot recurse); they have a flow step's fields.
    let flow_step = SCHEMA
        .pointer("/properties/spec/properties/flows/additionalProperties/items")
        .unwrap_or(&Value::Null);
    let mut node = &*SCHEMA;
    let mut previous: Option<&Segment> = None;
    for segment in parent {
        let in_group_steps = matches!(previous, Some(Segment::Key(key)) if key == "steps");
        previous = Some(segment);
        node = match segment {
            Segment::Index(_) if in_group_steps => flow_step,
            Segment::Index(_) => match node.get("items") {
                Some(items) => items,
                None => return Vec::new(),
            },
            Segment::Key(key) => match node.get("properties").and_then(|p| p.get(key)) {
                Some(child) => child,
                None => match node.get("additionalProperties") {
                    Some(child) if child.is_object() => child,
                    _ => return Vec::new(),
                },
            },
        };
    }
    let mut names: Vec<String> = node
        .get("properties")
        .and_then(Value::as_object)
        .map(|properties| properties.keys().cloned().collect())
        .unwrap_or_default();
    names.sort();
    names
}
