//! The documents both servers contribute to: the group list at `/apis` and the OpenAPI v3
//! index at `/openapi/v3` (kube-apiserver's aggregator merges its delegates' the same way).

use serde_json::{Map, Value, json};

/// `/apis`: the stand-in's own groups, then the real server's delegated groups.
pub fn groups(local: &Value, real: &Value, delegated: impl Fn(&str) -> bool) -> Value {
    let name = |group: &Value| group["name"].as_str().unwrap_or_default().to_string();
    let mut merged: Vec<Value> = list(local, "groups")
        .filter(|g| !delegated(&name(g)))
        .cloned()
        .collect();
    merged.extend(
        list(real, "groups")
            .filter(|g| delegated(&name(g)))
            .cloned(),
    );
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": merged})
}

/// `/openapi/v3`: every local document but those of delegated groups, and the real server's
/// documents of delegated groups (their URLs, hashes included, are the real server's; the
/// stand-in forwards them there).
pub fn openapi_root(local: &Value, real: &Value, delegated: impl Fn(&str) -> bool) -> Value {
    let group_of = |key: &str| -> Option<String> {
        let mut parts = key.split('/');
        match (parts.next(), parts.next(), parts.next()) {
            (Some("apis"), Some(group), Some(_)) => Some(group.to_string()),
            _ => None,
        }
    };
    let mut paths = Map::new();
    for (key, value) in entries(local) {
        if !group_of(key).is_some_and(|g| delegated(&g)) {
            paths.insert(key.clone(), value.clone());
        }
    }
    for (key, value) in entries(real) {
        if group_of(key).is_some_and(|g| delegated(&g)) {
            paths.insert(key.clone(), value.clone());
        }
    }
    json!({"paths": paths})
}

fn list<'a>(document: &'a Value, field: &str) -> impl Iterator<Item = &'a Value> {
    document[field].as_array().into_iter().flatten()
}

fn entries(document: &Value) -> impl Iterator<Item = (&String, &Value)> {
    document["paths"].as_object().into_iter().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delegated(group: &str) -> bool {
        group == "stampede.dev" || group == "apiextensions.k8s.io"
    }

    #[test]
    fn groups_come_from_the_server_that_serves_them() {
        let local =
            json!({"groups": [{"name": "apps"}, {"name": "apiextensions.k8s.io", "local": true}]});
        let real = json!({"groups": [{"name": "apiextensions.k8s.io"}, {"name": "stampede.dev"}, {"name": "apps", "real": true}]});
        let merged = groups(&local, &real, delegated);
        assert_eq!(
            merged["groups"],
            json!([{"name": "apps"}, {"name": "apiextensions.k8s.io"}, {"name": "stampede.dev"}])
        );
        assert_eq!(merged["kind"], "APIGroupList");
    }

    #[test]
    fn openapi_documents_come_from_the_server_that_serves_the_group() {
        let local = json!({"paths": {
            "api/v1": {"serverRelativeURL": "/openapi/v3/api/v1?hash=L1"},
            "apis/apps/v1": {"serverRelativeURL": "/openapi/v3/apis/apps/v1?hash=L2"},
            "apis/apiextensions.k8s.io/v1": {"serverRelativeURL": "local"}}});
        let real = json!({"paths": {
            "apis": {"serverRelativeURL": "real-root"},
            "apis/apiextensions.k8s.io/v1": {"serverRelativeURL": "/openapi/v3/apis/apiextensions.k8s.io/v1?hash=R1"},
            "apis/stampede.dev/v1alpha1": {"serverRelativeURL": "/openapi/v3/apis/stampede.dev/v1alpha1?hash=R2"}}});
        let merged = openapi_root(&local, &real, delegated);
        let keys: Vec<&String> = merged["paths"].as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            [
                "api/v1",
                "apis/apiextensions.k8s.io/v1",
                "apis/apps/v1",
                "apis/stampede.dev/v1alpha1"
            ]
        );
        assert_eq!(
            merged["paths"]["apis/apiextensions.k8s.io/v1"]["serverRelativeURL"],
            "/openapi/v3/apis/apiextensions.k8s.io/v1?hash=R1"
        );
    }
}
