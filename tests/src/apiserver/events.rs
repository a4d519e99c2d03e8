//! Events are one resource served at two versions, as on a real cluster: `events.k8s.io/v1`
//! Events (what kube-rs' Recorder writes) and core `v1` Events (what `kubectl describe` reads)
//! are stored once, as core Events, and converted on the way in and out with Kubernetes' own
//! field mapping (`regarding` ↔ `involvedObject`, `note` ↔ `message`, ...).

use serde_json::{Map, Value};

/// events.k8s.io/v1 field → core/v1 field, where the names differ.
const RENAMED: [(&str, &str); 7] = [
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
    ("reportingController", "reportingComponent"),
];

/// The group whose Events are a view of the core ones.
pub const GROUP: &str = "events.k8s.io";
/// Its served `apiVersion`.
pub const API_VERSION: &str = "events.k8s.io/v1";

/// An events.k8s.io/v1 Event (or a merge patch or applied configuration of one) as a core
/// v1 Event.
pub fn to_core(event: &Value) -> Value {
    let Some(fields) = event.as_object() else {
        return event.clone();
    };
    let mut core = Map::new();
    for (key, value) in fields {
        let name = RENAMED
            .iter()
            .find(|(v1, _)| v1 == key)
            .map_or(key.as_str(), |(_, core)| core);
        core.insert(name.to_string(), value.clone());
    }
    if core.contains_key("apiVersion") {
        core.insert("apiVersion".into(), Value::from("v1"));
    }
    Value::Object(core)
}

/// A stored core v1 Event as events.k8s.io/v1 serves it.
pub fn from_core(event: &Value) -> Value {
    let Some(fields) = event.as_object() else {
        return event.clone();
    };
    let mut v1 = Map::new();
    for (key, value) in fields {
        let name = RENAMED
            .iter()
            .find(|(_, core)| core == key)
            .map_or(key.as_str(), |(v1, _)| v1);
        v1.insert(name.to_string(), value.clone());
    }
    v1.insert("apiVersion".into(), Value::from(API_VERSION));
    // reportingController is required in events.k8s.io; older core writers set only source.
    if !v1.contains_key("reportingController")
        && let Some(component) = v1
            .get("deprecatedSource")
            .and_then(|s| s.get("component"))
            .cloned()
    {
        v1.insert("reportingController".into(), component);
    }
    Value::Object(v1)
}

/// An events.k8s.io field selector (`regarding.name=x,type=Warning`) in core field names.
pub fn selector_to_core(selector: &str) -> String {
    selector
        .split(',')
        .map(|term| {
            let split = term.find(['=', '!']).unwrap_or(term.len());
            let (field, rest) = term.split_at(split);
            let field = field.trim();
            let (head, tail) = field.split_once('.').unwrap_or((field, ""));
            let renamed = RENAMED
                .iter()
                .find(|(v1, _)| *v1 == head)
                .map_or(head, |(_, core)| core);
            if tail.is_empty() {
                format!("{renamed}{rest}")
            } else {
                format!("{renamed}.{tail}{rest}")
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn recorder_event() -> Value {
        json!({
            "apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": "spike.1", "namespace": "shop"},
            "eventTime": "2026-12-06T10:00:00.000000Z",
            "regarding": {"apiVersion": "stampede.dev/v1alpha1", "kind": "LoadTest", "name": "spike", "namespace": "shop", "uid": "u1"},
            "note": "thresholds failed", "reason": "ThresholdsFailed", "type": "Warning",
            "action": "Reconcile", "reportingController": "stampede-operator", "reportingInstance": "op-0",
            "series": {"count": 2, "lastObservedTime": "2026-12-06T10:00:05.000000Z"}
        })
    }

    #[test]
    fn a_recorder_event_is_a_core_event_kubectl_describe_can_read() {
        let core = to_core(&recorder_event());
        assert_eq!(core["apiVersion"], "v1");
        assert_eq!(core["involvedObject"]["name"], "spike");
        assert_eq!(core["message"], "thresholds failed");
        assert_eq!(core["reportingComponent"], "stampede-operator");
        assert_eq!(core["series"]["count"], 2);
        assert!(core.get("regarding").is_none() && core.get("note").is_none());
    }

    #[test]
    fn the_round_trip_keeps_every_field() {
        assert_eq!(from_core(&to_core(&recorder_event())), recorder_event());
    }

    #[test]
    fn a_core_event_reads_as_events_k8s_io() {
        let core = json!({"apiVersion": "v1", "kind": "Event", "message": "m", "count": 3,
                          "source": {"component": "kubelet"}, "involvedObject": {"name": "p"}});
        let v1 = from_core(&core);
        assert_eq!(v1["note"], "m");
        assert_eq!(v1["deprecatedCount"], 3);
        assert_eq!(v1["regarding"]["name"], "p");
        assert_eq!(v1["reportingController"], "kubelet");
    }

    #[test]
    fn field_selectors_use_core_names() {
        assert_eq!(
            selector_to_core("regarding.name=spike,type!=Normal,reportingController==op"),
            "involvedObject.name=spike,type!=Normal,reportingComponent==op"
        );
        assert_eq!(selector_to_core(""), "");
    }
}
