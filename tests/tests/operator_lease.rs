//! Leader election against the API server stand-in (or a real cluster): two electors on one
//! Lease agree on exactly one leader, a released Lease passes to the other at once, and a
//! leader whose Lease is taken from it steps down.

use std::future::Future;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::PostParams;
use stampede_operator::lease::{self, Leadership, LeaseConfig};
use stampede_tests::cluster::Cluster;

const LEASE: &str = "stampede-operator";

/// A bound on every wait: long enough for a loaded machine, far shorter than the Lease below,
/// so a handover within it cannot be the Lease running out.
const WAIT: Duration = Duration::from_secs(10);

/// Much longer than [`WAIT`]: every handover in these tests must come from a release.
const LEASE_DURATION: Duration = Duration::from_secs(60);

fn config(namespace: &str, identity: &str) -> LeaseConfig {
    LeaseConfig {
        lease_duration: LEASE_DURATION,
        renew_every: Duration::from_millis(300),
        ..LeaseConfig::new(namespace, LEASE, identity)
    }
}

async fn within<F: Future>(what: &str, future: F) -> F::Output {
    tokio::time::timeout(WAIT, future)
        .await
        .unwrap_or_else(|_| panic!("{what} did not happen within {WAIT:?}"))
}

/// Polls the Lease until `done` holds for it, within [`WAIT`]; returns that Lease.
async fn lease_until(api: &Api<Lease>, what: &str, done: impl Fn(&Lease) -> bool) -> Lease {
    within(what, async {
        let mut poll = tokio::time::interval(Duration::from_millis(50));
        loop {
            poll.tick().await;
            if let Some(lease) = api.get_opt(LEASE).await.expect("read the Lease")
                && done(&lease)
            {
                return lease;
            }
        }
    })
    .await
}

fn holder(lease: &Lease) -> Option<&str> {
    lease.spec.as_ref()?.holder_identity.as_deref()
}

fn renewed(lease: &Lease) -> Option<Timestamp> {
    Some(lease.spec.as_ref()?.renew_time.as_ref()?.0)
}

fn transitions(lease: &Lease) -> Option<i32> {
    lease.spec.as_ref()?.lease_transitions
}

/// Spawns electors `a` and `b` and waits for the first leader: (winner, winner's config,
/// loser, loser's config).
async fn elect_two(
    cluster: &Cluster,
    namespace: &str,
) -> (Leadership, LeaseConfig, Leadership, LeaseConfig) {
    let (config_a, config_b) = (config(namespace, "a"), config(namespace, "b"));
    let mut a = lease::spawn(cluster.client().await, config_a.clone());
    let mut b = lease::spawn(cluster.client().await, config_b.clone());
    let a_won = within("a first leader", async {
        tokio::select! {
            () = a.acquired() => true,
            () = b.acquired() => false,
        }
    })
    .await;
    if a_won {
        (a, config_a, b, config_b)
    } else {
        (b, config_b, a, config_a)
    }
}

#[tokio::test]
async fn two_electors_agree_on_one_leader_and_a_release_hands_over() {
    let cluster = Cluster::start().await;
    let namespace = cluster.namespace("lease").await;
    let api: Api<Lease> = Api::namespaced(cluster.client().await, &namespace);
    let (leader, leader_config, mut follower, follower_config) =
        elect_two(&cluster, &namespace).await;

    assert!(leader.is_leader());
    assert!(!follower.is_leader());
    let created = api.get(LEASE).await.expect("the Lease exists");
    assert_eq!(holder(&created), Some(leader_config.identity.as_str()));
    assert_eq!(transitions(&created), Some(0));
    let spec = created.spec.clone().expect("a spec");
    assert_eq!(spec.lease_duration_seconds, Some(60));
    assert!(spec.acquire_time.is_some());

    // The leader keeps renewing, twice over, and the follower keeps following meanwhile.
    let first = renewed(&created).expect("a renewTime");
    let mut last = first;
    for round in 0..2 {
        let lease = lease_until(&api, &format!("renewal {round}"), |lease| {
            renewed(lease).is_some_and(|at| at > last)
        })
        .await;
        assert_eq!(holder(&lease), Some(leader_config.identity.as_str()));
        last = renewed(&lease).expect("a renewTime");
        assert!(leader.is_leader());
        assert!(!follower.is_leader());
    }

    // Shutdown as the operator does it: stop the elector, then hand the Lease back.
    leader.stop().await;
    let released = lease::release(cluster.client().await, &leader_config)
        .await
        .expect("release the Lease");
    assert!(released, "the leader held the Lease");

    within("the follower taking over", follower.acquired()).await;
    assert!(follower.is_leader());
    let taken = api.get(LEASE).await.expect("the Lease exists");
    assert_eq!(holder(&taken), Some(follower_config.identity.as_str()));
    assert_eq!(transitions(&taken), Some(1));

    // Releasing a Lease someone else holds changes nothing.
    let again = lease::release(cluster.client().await, &leader_config)
        .await
        .expect("read the Lease");
    assert!(!again);
    let after = api.get(LEASE).await.expect("the Lease exists");
    assert_eq!(holder(&after), Some(follower_config.identity.as_str()));

    follower.stop().await;
    cluster.drop_namespace(&namespace).await;
}

#[tokio::test]
async fn a_leader_whose_lease_is_taken_steps_down() {
    let cluster = Cluster::start().await;
    let namespace = cluster.namespace("lease").await;
    let api: Api<Lease> = Api::namespaced(cluster.client().await, &namespace);
    let (mut leader, leader_config, follower, _) = elect_two(&cluster, &namespace).await;
    within("the leader seeing its own term", leader.acquired()).await;

    // Another party writes itself in as holder with a fresh renewal (an operator whose clock
    // ran ahead, say); retried because the leader's renewals move the resourceVersion.
    within("the takeover write", async {
        loop {
            let mut lease = api.get(LEASE).await.expect("read the Lease");
            if let Some(spec) = lease.spec.as_mut() {
                spec.holder_identity = Some("intruder".into());
                spec.renew_time = Some(MicroTime(Timestamp::now()));
            }
            match api.replace(LEASE, &PostParams::default(), &lease).await {
                Ok(_) => break,
                Err(kube::Error::Api(status)) if status.code == 409 => continue,
                Err(error) => panic!("replace the Lease: {error}"),
            }
        }
    })
    .await;

    within("the leader stepping down", leader.lost()).await;
    assert!(!leader.is_leader());
    assert!(!follower.is_leader());
    let lease = api.get(LEASE).await.expect("the Lease exists");
    assert_eq!(holder(&lease), Some("intruder"));
    // Neither candidate holds it, so releasing is a no-op.
    let released = lease::release(cluster.client().await, &leader_config)
        .await
        .expect("read the Lease");
    assert!(!released);

    leader.stop().await;
    follower.stop().await;
    cluster.drop_namespace(&namespace).await;
}
