//! Differential conformance of the stand-in (in-memory mode) with a real CRD API server
//! (apiextensions-apiserver 1.36): one process sends the same requests to both — the LoadTest
//! CRD and CRDs with each kind of defect a real server refuses, then, with the LoadTest CRD
//! installed, every one-mistake manifest of tests/invalid (with and without strict field
//! validation), every example LoadTest (nothing may be pruned), statuses written by merge patch
//! and by server-side apply (malformed date-times included), apiVersion/kind/name mistakes and
//! the `kubectl get lt` table — and fails on any difference in verdict, message or content.
//!
//! Skipped, with a line saying so, when no real server is built (see `.ci/deps`); with
//! `STAMPEDE_REAL_APISERVER_REQUIRED=1` that is a failure.

mod differential;

use std::time::Instant;

use differential::harness::{Pair, Request, Target};
use differential::{crds, manifests, meta, statuses};
use serde_json::json;
use stampede_tests::apiextensions;
use stampede_tests::apiserver::{ApiServer, client_for};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stand_in_answers_as_a_real_api_server_does() {
    let Some(real) = apiextensions::for_test() else {
        return;
    };
    let started = Instant::now();
    let stand_in = ApiServer::start_in_memory().expect("start the stand-in");
    eprintln!("real server: {} at {}", real.version(), real.url());
    let mut pair = Pair {
        real: Target::new("real", client_for(real.kubeconfig()).await.expect("client")),
        stand_in: Target::new("stand-in", stand_in.client().await.expect("client")),
        tally: Default::default(),
    };
    for namespace in ["shop", "shop-staging", "argocd", "flux-system"] {
        // The real CRD server does not check namespaces; the stand-in needs them.
        let namespace =
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}});
        let answer = pair
            .stand_in
            .send(&Request::json("POST", "/api/v1/namespaces", &namespace))
            .await;
        assert_eq!(answer.code, 201, "{:?}", answer.body);
    }

    crds::defects(&mut pair).await;
    crds::install_loadtest_crd(&mut pair).await;
    crds::updates(&mut pair).await;
    manifests::invalid(&mut pair).await;
    manifests::examples(&mut pair).await;
    statuses::writes(&mut pair).await;
    statuses::recorded_writes(&mut pair).await;
    meta::mistakes(&mut pair).await;
    statuses::table(&mut pair).await;

    let tally = &pair.tally;
    for difference in tally
        .verdicts
        .iter()
        .chain(&tally.messages)
        .chain(&tally.contents)
    {
        eprintln!("DIFFERENCE {difference}");
    }
    eprintln!("verdicts of the real server: {}", tally.verdict_counts());
    println!("{}", tally.summary());
    eprintln!(
        "{} (in {:.1} s)",
        tally.summary(),
        started.elapsed().as_secs_f64()
    );
    assert!(tally.requests > 200, "{}", tally.summary());
    assert!(tally.clean(), "{}", tally.summary());
}
