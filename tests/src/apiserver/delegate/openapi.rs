//! OpenAPI v3 of custom resources, built from their CRDs as kube-apiserver's CRD OpenAPI
//! builder builds it. A standalone apiextensions-apiserver publishes none (inside
//! kube-apiserver the aggregator does), so the delegating stand-in builds each group/version's
//! document from the CRDs the real server stores: what `kubectl explain` reads, and the PATCH
//! parameters from which kubectl learns that the server validates fields itself.

use schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};

/// ObjectMeta's and ListMeta's definitions, named as Kubernetes names them.
fn meta_definitions() -> Map<String, Value> {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ListMeta, ObjectMeta};
    let mut generator = SchemaSettings::openapi3().into_generator();
    generator.subschema_for::<ObjectMeta>();
    generator.subschema_for::<ListMeta>();
    generator.take_definitions(true).into_iter().collect()
}

/// `dev.stampede.v1alpha1.LoadTest`: Kubernetes' REST-friendly definition name.
pub fn definition_name(group: &str, version: &str, kind: &str) -> String {
    let reversed: Vec<&str> = group.split('.').rev().collect();
    format!("{}.{version}.{kind}", reversed.join("."))
}

/// The served `(group, version)` pairs of `crds` (CRD objects as JSON).
pub fn served(crds: &[Value]) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = crds
        .iter()
        .flat_map(|crd| {
            let group = crd["spec"]["group"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            crd["spec"]["versions"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|v| v["served"] == true)
                .filter_map(move |v| Some((group.clone(), v["name"].as_str()?.to_string())))
        })
        .collect();
    pairs.sort();
    pairs.dedup();
    pairs
}

/// A cache key for one group/version's document: changes whenever one of its CRDs does.
pub fn hash(crds: &[Value], group: &str, version: &str) -> String {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    for crd in crds.iter().filter(|c| c["spec"]["group"] == group) {
        crd["metadata"]["name"].as_str().hash(&mut hasher);
        crd["metadata"]["resourceVersion"]
            .as_str()
            .hash(&mut hasher);
    }
    version.hash(&mut hasher);
    format!("{:016X}", hasher.finish())
}

/// The document of `group/version`, or None when no CRD serves it.
pub fn document(crds: &[Value], group: &str, version: &str) -> Option<Value> {
    let mut schemas = meta_definitions();
    let mut paths = Map::new();
    let mut any = false;
    for crd in crds.iter().filter(|c| c["spec"]["group"] == group) {
        let spec = &crd["spec"];
        let Some(served) = spec["versions"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|v| v["name"] == version && v["served"] == true)
        else {
            continue;
        };
        any = true;
        let kind = spec["names"]["kind"].as_str().unwrap_or_default();
        let list_kind = spec["names"]["listKind"]
            .as_str()
            .map_or_else(|| format!("{kind}List"), str::to_string);
        let plural = spec["names"]["plural"].as_str().unwrap_or_default();
        let namespaced = spec["scope"] != "Cluster";
        let name = definition_name(group, version, kind);
        let gvk = |kind: &str| json!([{"group": group, "kind": kind, "version": version}]);
        let mut schema = served["schema"]["openAPIV3Schema"].clone();
        if !schema.is_object() {
            schema = json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true});
        }
        add_type_meta(
            &mut schema,
            "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        );
        schema["x-kubernetes-group-version-kind"] = gvk(kind);
        schemas.insert(name.clone(), schema);
        let mut list = json!({
            "description": format!("{list_kind} is a list of {kind}"),
            "type": "object",
            "required": ["items"],
            "properties": {"items": {
                "description": format!("List of {plural}. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md"),
                "type": "array",
                "items": {"$ref": format!("#/components/schemas/{name}")}}},
        });
        add_type_meta(&mut list, "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta");
        list["x-kubernetes-group-version-kind"] = gvk(&list_kind);
        schemas.insert(definition_name(group, version, &list_kind), list);
        let prefix = if namespaced {
            format!("/apis/{group}/{version}/namespaces/{{namespace}}/{plural}")
        } else {
            format!("/apis/{group}/{version}/{plural}")
        };
        let has_status = !served["subresources"]["status"].is_null();
        paths.insert(
            format!("{prefix}/{{name}}"),
            json!({"patch": patch_operation(group, version, kind, &name)}),
        );
        if has_status {
            paths.insert(
                format!("{prefix}/{{name}}/status"),
                json!({"patch": patch_operation(group, version, kind, &name)}),
            );
        }
    }
    any.then(|| {
        json!({
            "openapi": "3.0.0",
            "info": {"title": "Kubernetes CRD Swagger", "version": "v0.1.0"},
            "paths": paths,
            "components": {"schemas": schemas},
        })
    })
}

/// apiVersion, kind and metadata, with Kubernetes' descriptions.
fn add_type_meta(schema: &mut Value, meta: &str) {
    if !schema["properties"].is_object() {
        schema["properties"] = json!({});
    }
    let properties = &mut schema["properties"];
    properties["apiVersion"] = json!({"type": "string", "description": "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources"});
    properties["kind"] = json!({"type": "string", "description": "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds"});
    properties["metadata"] = json!({
        "description": "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata",
        "allOf": [{"$ref": format!("#/components/schemas/{meta}")}],
    });
}

fn patch_operation(group: &str, version: &str, kind: &str, definition: &str) -> Value {
    json!({
        "operationId": format!("patch{}{}{kind}", capitalized(group), capitalized(version)),
        "parameters": crate::apiserver::discovery::patch_parameters(),
        "requestBody": {"content": {
            "application/apply-patch+yaml": {"schema": {"type": "object"}},
            "application/json-patch+json": {"schema": {"type": "object"}},
            "application/merge-patch+json": {"schema": {"type": "object"}}}},
        "responses": {"200": {"description": "OK", "content": {"application/json": {
            "schema": {"$ref": format!("#/components/schemas/{definition}")}}}}},
        "x-kubernetes-action": "patch",
        "x-kubernetes-group-version-kind": {"group": group, "version": version, "kind": kind},
    })
}

fn capitalized(text: &str) -> String {
    text.split('.')
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_uppercase().chain(chars).collect::<String>()
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crd(version: &str, rv: &str) -> Value {
        json!({
            "metadata": {"name": "loadtests.stampede.dev", "resourceVersion": rv},
            "spec": {"group": "stampede.dev", "scope": "Namespaced",
                     "names": {"plural": "loadtests", "kind": "LoadTest", "listKind": "LoadTestList"},
                     "versions": [{"name": version, "served": true, "storage": true,
                                   "subresources": {"status": {}},
                                   "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                                       "spec": {"type": "object", "description": "What to run."}}}}}]}
        })
    }

    #[test]
    fn definitions_are_named_and_tagged_as_kubernetes_does() {
        assert_eq!(
            definition_name("stampede.dev", "v1alpha1", "LoadTest"),
            "dev.stampede.v1alpha1.LoadTest"
        );
        let doc = document(&[crd("v1alpha1", "5")], "stampede.dev", "v1alpha1").unwrap();
        let schema = &doc["components"]["schemas"]["dev.stampede.v1alpha1.LoadTest"];
        assert_eq!(
            schema["x-kubernetes-group-version-kind"],
            json!([{"group": "stampede.dev", "kind": "LoadTest", "version": "v1alpha1"}])
        );
        assert_eq!(schema["properties"]["spec"]["description"], "What to run.");
        assert_eq!(
            schema["properties"]["metadata"]["allOf"][0]["$ref"],
            "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
        );
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        assert!(schemas.contains_key("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"));
        assert!(schemas.contains_key("io.k8s.apimachinery.pkg.apis.meta.v1.ManagedFieldsEntry"));
        assert!(schemas.contains_key("dev.stampede.v1alpha1.LoadTestList"));
        let patch = &doc["paths"]["/apis/stampede.dev/v1alpha1/namespaces/{namespace}/loadtests/{name}"]
            ["patch"];
        assert_eq!(patch["operationId"], "patchStampedeDevV1alpha1LoadTest");
        assert!(
            patch["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == "fieldValidation")
        );
        assert!(document(&[crd("v1alpha1", "5")], "stampede.dev", "v1").is_none());
    }

    #[test]
    fn the_hash_follows_the_crds() {
        let before = hash(&[crd("v1alpha1", "5")], "stampede.dev", "v1alpha1");
        assert_eq!(
            before,
            hash(&[crd("v1alpha1", "5")], "stampede.dev", "v1alpha1")
        );
        assert_ne!(
            before,
            hash(&[crd("v1alpha1", "6")], "stampede.dev", "v1alpha1")
        );
        assert_eq!(
            served(&[crd("v1alpha1", "5")]),
            [("stampede.dev".to_string(), "v1alpha1".to_string())]
        );
    }
}
