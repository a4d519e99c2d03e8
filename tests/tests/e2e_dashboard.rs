//! The operator's fleet dashboard as a person reaches it (the port `kubectl port-forward`
//! would forward): the list of LoadTests, a running one's live page with values that change
//! between two updates, drawn in headless Chromium, and its final report when the run ends.

use serde_json::json;
use stampede_crds::status::Phase;
use stampede_tests::browser::{
    assert_final_event, assert_live_page, next_event, open_events, rendered_dom_at,
};
use stampede_tests::world::{World, phase, steady};

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

    // The end: the final report (the verdict the status has), then the stream ends.
    let done = assert_final_event(&mut events, "PASSED");
    let status = world.get("live").await.status.unwrap();
    assert_eq!(phase(&status), Phase::Succeeded);
    assert_eq!(
        Some(requests(&done)),
        status.summary.as_ref().map(|s| s.http_reqs as f64)
    );
}
