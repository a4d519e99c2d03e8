//! The operator's fleet dashboard as a person reaches it (the port `kubectl port-forward`
//! would forward): the list of LoadTests, a running one's live page with values that change
//! between two updates, drawn in headless Chromium, and its final report when the run ends;
//! and `stampede dashboard NAME`, which reaches the same page through the API server's
//! `pods/portforward` to the operator's pod.

use std::process::{Command, Stdio};

use serde_json::json;
use stampede_crds::status::Phase;
use stampede_tests::browser::{
    assert_final_event, assert_live_page, next_event, open_events, rendered_dom_at,
};
use stampede_tests::world::{World, phase, steady};
use stampede_tests::{first_url, stampede_bin};

/// Registers the operator process as the chart's operator pod (bound to another node, so the
/// process kubelet leaves it alone), Running, its dashboard at `addr` on the shared loopback.
fn register_operator_pod(world: &World, addr: &str) {
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "stampede-operator-0", "namespace": world.namespace,
            "labels": {"app.kubernetes.io/name": "stampede", "app.kubernetes.io/component": "operator"}},
        "spec": {"nodeName": "operator-node", "containers": [{"name": "operator", "image": "stampede-operator",
            "env": [{"name": "STAMPEDE_DASHBOARD_ADDR", "value": addr}]}]},
    });
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pod.json");
    std::fs::write(&file, pod.to_string()).unwrap();
    world
        .cluster
        .kubectl_ok(&["create", "-f", &file.to_string_lossy()]);
    world.cluster.kubectl_ok(&[
        "patch",
        "pod",
        "stampede-operator-0",
        "-n",
        &world.namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"phase":"Running"}}"#,
    ]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fleet_dashboard_shows_a_running_loadtest_live_and_then_its_final_report() {
    let world = World::start("fleet", 60).await;
    world.apply(
        "live",
        steady(2, "10s", 2, json!({"checks": ["rate>0.99"]})),
    );
    world.wait_running_with_progress("live").await;
    let addr = world
        .operator
        .dashboard_addr()
        .expect("the operator logs its dashboard's address")
        .to_string();
    let ns = &world.namespace;

    // The list links the LoadTest.
    let list = rendered_dom_at(&format!("http://{addr}/"));
    assert!(
        list.contains(&format!("href=\"/loadtests/{ns}/live\"")),
        "{list}"
    );
    assert!(list.contains(">running<"), "{list}");

    // Its event stream: the fleet's merged values move between two updates.
    let mut events = open_events(&addr, &format!("/loadtests/{ns}/live/events"));
    let requests = |update: &serde_json::Value| {
        update["data"]["headline"]["requests"]
            .as_f64()
            .unwrap_or_default()
    };
    let early = next_event(&mut events, "update");
    let mut later = next_event(&mut events, "update");
    // An update made before the operator merged new reports repeats the last one.
    for _ in 0..3 {
        if requests(&later) > requests(&early) {
            break;
        }
        later = next_event(&mut events, "update");
    }
    assert!(
        requests(&later) > requests(&early),
        "live values did not change: {} then {}",
        requests(&early),
        requests(&later)
    );

    // The page draws every chart and takes updates.
    let dom = rendered_dom_at(&format!("http://{addr}/loadtests/{ns}/live"));
    assert_live_page(&dom);

    // `stampede dashboard NAME`: the same live page through pods/portforward to the pod.
    if !world.cluster.is_real() {
        register_operator_pod(&world, &addr);
        let mut forward = Command::new(stampede_bin())
            .args([
                "dashboard",
                "live",
                "-n",
                ns,
                "--operator-namespace",
                ns,
                "--port",
                "0",
            ])
            .env("KUBECONFIG", world.cluster.kubeconfig())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start stampede dashboard");
        let (url, line) = first_url(&mut forward);
        assert!(url.ends_with(&format!("/loadtests/{ns}/live")), "{line}");
        assert!(line.contains("through pod"), "{line}");
        let through = rendered_dom_at(&url);
        assert_live_page(&through);
        assert!(through.contains("live"), "{through}");
        let _ = forward.kill();
        let _ = forward.wait();
    }

    // The end: the final report (the verdict the status has), then the stream ends.
    let done = assert_final_event(&mut events, "PASSED");
    let status = world.get("live").await.status.unwrap();
    assert_eq!(phase(&status), Phase::Succeeded);
    assert_eq!(
        Some(requests(&done)),
        status.summary.as_ref().map(|s| s.http_reqs as f64)
    );
}
