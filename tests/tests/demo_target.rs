//! The demo target the end-to-end tests deploy on a real cluster: the chart's demo-server
//! Deployment and Service rendered for a test's namespace, checked field by field, decoded as
//! the API server decodes them, and applied with `kubectl`.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use serde_json::{Value, json};
use stampede_tests::apiserver::builtin::dropped_fields;
use stampede_tests::cluster::{Cluster, runner_image};
use stampede_tests::demo_target::{DemoObjects, DemoTarget};

const IMAGE: &str = "localhost:5000/team/stampede:e2e";

/// `object` through its typed struct and back (how the API server decodes a built-in kind):
/// the paths of the fields it did not keep.
fn not_kept<K: serde::de::DeserializeOwned + serde::Serialize>(object: &Value) -> Vec<String> {
    let typed: K = serde_json::from_value(object.clone())
        .unwrap_or_else(|error| panic!("does not decode: {error}\n{object:#}"));
    dropped_fields(object, &serde_json::to_value(typed).unwrap())
}

#[test]
fn the_demo_objects_live_in_the_namespace_with_the_image_and_the_port() {
    let objects = DemoObjects::render("shop-e2e-x7k2p", IMAGE).unwrap();
    let (deployment, service) = (&objects.deployment, &objects.service);
    assert_eq!(deployment["kind"], "Deployment");
    assert_eq!(service["kind"], "Service");
    assert_eq!(deployment["metadata"]["namespace"], "shop-e2e-x7k2p");
    assert_eq!(service["metadata"]["namespace"], "shop-e2e-x7k2p");
    let pod = &deployment["spec"]["template"];
    let container = &pod["spec"]["containers"][0];
    assert_eq!(container["image"], IMAGE);
    assert_eq!(container["command"], json!(["stampede"]));
    assert_eq!(
        container["args"],
        json!(["demo-server", "--listen", "0.0.0.0:8080"])
    );
    assert_eq!(
        container["ports"],
        json!([{"name": "http", "containerPort": 8080, "protocol": "TCP"}])
    );
    assert_eq!(container["readinessProbe"]["httpGet"]["port"], "http");
    // The Service sends its http port to the pods' http port, and selects those pods.
    assert_eq!(
        service["spec"]["ports"],
        json!([{"name": "http", "port": 8080, "targetPort": "http", "protocol": "TCP"}])
    );
    let selector = service["spec"]["selector"].as_object().unwrap();
    assert!(!selector.is_empty());
    for (key, value) in selector {
        assert_eq!(&pod["metadata"]["labels"][key], value, "pod label {key}");
    }
    assert_eq!(
        deployment["spec"]["selector"]["matchLabels"],
        json!(selector)
    );
    // The base URL names the Service by its in-cluster DNS name.
    assert_eq!(objects.service_name().unwrap(), "stampede-demo");
    assert_eq!(objects.deployment_name().unwrap(), "stampede-demo");
    assert_eq!(objects.port().unwrap(), 8080);
    assert_eq!(
        objects.base_url().unwrap(),
        "http://stampede-demo.shop-e2e-x7k2p.svc:8080"
    );
    // Both decode as the API server decodes them, keeping every field.
    assert_eq!(not_kept::<Deployment>(deployment), Vec::<String>::new());
    assert_eq!(not_kept::<Service>(service), Vec::<String>::new());
    // (A field the API does not know would show.)
    let mut misspelt = service.clone();
    misspelt["spec"]["selektor"] = misspelt["spec"]["selector"].clone();
    assert_eq!(not_kept::<Service>(&misspelt), [".spec.selektor"]);
    // The manifest is the two of them, Service first.
    let manifest = stampede_tests::chart::parse_documents(&objects.manifest().unwrap());
    let kinds: Vec<_> = manifest
        .iter()
        .map(|d| d["kind"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(kinds, ["Service", "Deployment"]);
}

#[test]
fn an_image_by_digest_reaches_the_deployment_unchanged() {
    let image = format!("localhost:5000/stampede@sha256:{}", "0a".repeat(32));
    let objects = DemoObjects::render("digest", &image).unwrap();
    assert_eq!(
        objects.deployment["spec"]["template"]["spec"]["containers"][0]["image"],
        image.as_str()
    );
    let untagged = DemoObjects::render("untagged", "localhost:5000/stampede").unwrap();
    assert_eq!(
        untagged.deployment["spec"]["template"]["spec"]["containers"][0]["image"],
        "localhost:5000/stampede:latest"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_applies_the_demo_objects_to_the_cluster() {
    let cluster = Cluster::start().await;
    eprintln!("applying to {}", cluster.describe());
    let namespace = cluster.namespace("demo-target").await;
    cluster.delete_at_end(&format!("namespace/{namespace}"));
    let objects = DemoObjects::render(&namespace, &runner_image()).unwrap();
    if cluster.is_real() {
        // The whole path the end-to-end tests take: applied, Available, addressed by Service.
        let demo = DemoTarget::start(&cluster, &namespace).await;
        assert!(demo.stats().is_none());
        assert_eq!(demo.base_url(), objects.base_url().unwrap());
    } else {
        // The stand-in stores Deployments and Services (it runs no controllers for them).
        objects.apply(&cluster);
    }
    let name = objects.deployment_name().unwrap();
    let stored: Value = serde_json::from_str(&cluster.kubectl_ok(&[
        "get",
        "deployment",
        name,
        "-n",
        &namespace,
        "-o",
        "json",
    ]))
    .unwrap();
    assert_eq!(
        stored["spec"]["template"]["spec"]["containers"][0]["image"],
        runner_image()
    );
    let service: Value = serde_json::from_str(&cluster.kubectl_ok(&[
        "get",
        "service",
        objects.service_name().unwrap(),
        "-n",
        &namespace,
        "-o",
        "json",
    ]))
    .unwrap();
    assert_eq!(service["spec"]["ports"][0]["port"], 8080);
    assert_eq!(service["metadata"]["namespace"], namespace.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_in_process_target_serves_on_loopback_and_counts() {
    let demo = DemoTarget::in_process().await;
    assert!(
        demo.base_url().starts_with("http://127.0.0.1:"),
        "{}",
        demo.base_url()
    );
    let address = demo.base_url().trim_start_matches("http://").to_string();
    let response = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(address).unwrap();
        stream
            .write_all(b"GET /boards HTTP/1.1\r\nHost: demo\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response
    })
    .await
    .unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert_eq!(demo.stats().map(|s| s.route("GET /boards")), Some(1));
}
