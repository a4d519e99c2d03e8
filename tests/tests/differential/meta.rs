//! apiVersion, kind and metadata mistakes: creations, updates, patches and server-side
//! applies that the real server refuses before or during validation.

use serde_json::{Value, json};

use super::fixtures::{APPLY, MERGE, loadtests, small_loadtest};
use super::harness::{Normalizer, Pair, Request, generated_names, verbatim};
use super::manifests::delete_created;
use super::statuses::create_both;

/// Every mistake, on both servers.
pub async fn mistakes(pair: &mut Pair) {
    let path = loadtests("default");
    let with = |name: &str, change: &dyn Fn(&mut Value)| {
        let mut manifest = small_loadtest(name);
        change(&mut manifest);
        manifest
    };
    let cases: Vec<(&str, Value, Box<Normalizer>)> = vec![
        (
            "apiVersion v1, only v1alpha1 is served",
            with("m-version", &|m| m["apiVersion"] = json!("stampede.dev/v1")),
            Box::new(verbatim),
        ),
        (
            "apiVersion of another group",
            with("m-group", &|m| {
                m["apiVersion"] = json!("other.dev/v1alpha1")
            }),
            Box::new(verbatim),
        ),
        (
            "no apiVersion",
            with("m-no-version", &|m| {
                m.as_object_mut().map(|o| o.remove("apiVersion"));
            }),
            Box::new(verbatim),
        ),
        (
            "kind Loadtest",
            with("m-kind", &|m| m["kind"] = json!("Loadtest")),
            Box::new(verbatim),
        ),
        (
            "no kind",
            with("m-no-kind", &|m| {
                m.as_object_mut().map(|o| o.remove("kind"));
            }),
            Box::new(verbatim),
        ),
        (
            "an empty kind",
            with("m-empty-kind", &|m| m["kind"] = json!("")),
            Box::new(verbatim),
        ),
        (
            "no kind and another apiVersion",
            with("m-none", &|m| {
                m.as_object_mut().map(|o| o.remove("kind"));
                m["apiVersion"] = json!("stampede.dev/v1");
            }),
            Box::new(verbatim),
        ),
        (
            "kind and apiVersion both wrong",
            with("m-both", &|m| {
                m["kind"] = json!("Loadtest");
                m["apiVersion"] = json!("stampede.dev/v1");
            }),
            Box::new(verbatim),
        ),
        (
            "a wrong kind and an invalid name",
            with("Bad_Kind", &|m| m["kind"] = json!("Foo")),
            Box::new(verbatim),
        ),
        (
            "an upper-case name with an underscore",
            small_loadtest("Bad_Name"),
            Box::new(verbatim),
        ),
        (
            "a name ending in a dash",
            small_loadtest("ends-with-"),
            Box::new(verbatim),
        ),
        (
            "a name with an empty label",
            small_loadtest("a..b"),
            Box::new(verbatim),
        ),
        (
            "a name of 254 characters",
            small_loadtest(&"a".repeat(254)),
            Box::new(verbatim),
        ),
        (
            "a dotted name (valid)",
            small_loadtest("dotted.name-1"),
            Box::new(verbatim),
        ),
        (
            "no name",
            with("", &|m| m["metadata"] = json!({})),
            Box::new(verbatim),
        ),
        (
            "an invalid generateName",
            with("", &|m| m["metadata"] = json!({"generateName": "Bad_"})),
            Box::new(generated_names("Bad_")),
        ),
        (
            "a label value over 63 characters",
            with("m-label", &|m| {
                m["metadata"]["labels"] = json!({"team": "x".repeat(64)})
            }),
            Box::new(verbatim),
        ),
        (
            "a label key with a space",
            with("m-label-key", &|m| {
                m["metadata"]["labels"] = json!({"bad key": "v"})
            }),
            Box::new(verbatim),
        ),
        (
            "a label value starting with a dash",
            with("m-label-dash", &|m| {
                m["metadata"]["labels"] = json!({"team": "-shop"})
            }),
            Box::new(verbatim),
        ),
        (
            "an annotation key with two slashes",
            with("m-annotation", &|m| {
                m["metadata"]["annotations"] = json!({"a/b/c": "v"})
            }),
            Box::new(verbatim),
        ),
        (
            "a finalizer with a space",
            with("m-finalizer", &|m| {
                m["metadata"]["finalizers"] = json!(["bad finalizer"])
            }),
            Box::new(verbatim),
        ),
    ];
    for (label, manifest, normalize) in cases {
        let (real, stand_in) = pair
            .compare(label, &Request::json("POST", &path, &manifest), &*normalize)
            .await;
        delete_created(pair, "default", &real, &stand_in).await;
    }
    // Updates and patches of an existing object.
    create_both(pair, &small_loadtest("meta-target")).await;
    let object_path = format!("{path}/meta-target");
    let (real, stand_in) = pair.both(&Request::get(&object_path)).await;
    let versions = [real, stand_in].map(|o| {
        o.body["metadata"]["resourceVersion"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    });
    for (label, change) in [
        (
            "PUT with apiVersion v1",
            json!({"apiVersion": "stampede.dev/v1"}),
        ),
        ("PUT with kind Loadtest", json!({"kind": "Loadtest"})),
        ("PUT without a kind", json!({"kind": null})),
    ] {
        // Each server gets its own resourceVersion, so the request bodies differ only there.
        let requests: Vec<Request> = versions
            .iter()
            .map(|version| {
                let mut manifest = small_loadtest("meta-target");
                manifest["metadata"]["resourceVersion"] = json!(version);
                for (k, v) in change.as_object().into_iter().flatten() {
                    if v.is_null() {
                        manifest.as_object_mut().map(|o| o.remove(k));
                    } else {
                        manifest[k] = v.clone();
                    }
                }
                Request::json("PUT", &object_path, &manifest)
            })
            .collect();
        let normalize = |m: &str| m.replace(&versions[0], "RV").replace(&versions[1], "RV");
        pair.compare_each(label, &requests[0], &requests[1], &normalize)
            .await;
    }
    for (label, patch) in [
        (
            "merge patch to apiVersion v1",
            json!({"apiVersion": "stampede.dev/v1"}),
        ),
        ("merge patch to kind Loadtest", json!({"kind": "Loadtest"})),
        (
            "merge patch of both",
            json!({"kind": "Loadtest", "apiVersion": "stampede.dev/v1"}),
        ),
        (
            "merge patch to an invalid label",
            json!({"metadata": {"labels": {"team": "-x"}}}),
        ),
    ] {
        pair.compare(
            label,
            &Request::patch(&object_path, MERGE, &patch),
            &verbatim,
        )
        .await;
    }
    let apply_path = format!("{object_path}?fieldManager=differential&force=true");
    for (label, change) in [
        ("apply with kind Loadtest", json!({"kind": "Loadtest"})),
        (
            "apply with apiVersion v1",
            json!({"apiVersion": "stampede.dev/v1"}),
        ),
    ] {
        let mut applied = small_loadtest("meta-target");
        for (k, v) in change.as_object().into_iter().flatten() {
            applied[k] = v.clone();
        }
        pair.compare(
            label,
            &Request::patch(&apply_path, APPLY, &applied),
            &verbatim,
        )
        .await;
    }
    let mut invalid_name = small_loadtest("Bad_Apply");
    invalid_name["metadata"]["name"] = json!("Bad_Apply");
    pair.compare(
        "apply creating an invalid name",
        &Request::patch(
            &format!("{path}/Bad_Apply?fieldManager=differential"),
            APPLY,
            &invalid_name,
        ),
        &verbatim,
    )
    .await;
}
