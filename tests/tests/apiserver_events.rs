//! Events are one store at two versions, as on a real cluster: what kube-rs' Recorder writes as
//! `events.k8s.io/v1` is what `kubectl describe` and `kubectl get events` read as core `v1`
//! Events, and the other way round.

use k8s_openapi::api::core::v1::{ConfigMap, Event as CoreEvent};
use k8s_openapi::api::events::v1::Event as EventV1;
use kube::Resource;
use kube::api::{Api, ListParams, PostParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use serde_json::json;
use stampede_tests::cluster::Cluster;

#[tokio::test]
async fn recorder_events_show_in_kubectl_describe_and_both_apis() {
    let cluster = Cluster::start().await;
    let ns = cluster.namespace("events").await;
    let client = cluster.client().await;
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let target: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "target"}, "data": {"a": "b"}}))
            .unwrap();
    let target = maps.create(&PostParams::default(), &target).await.unwrap();
    let reporter = Reporter {
        controller: "stampede-operator".into(),
        instance: Some("stampede-operator-0".into()),
    };
    let recorder = Recorder::new(client.clone(), reporter);
    let event = Event {
        type_: EventType::Warning,
        reason: "ThresholdsFailed".into(),
        note: Some("http_req_duration p(95)=512.3ms, want <500".into()),
        action: "Reconcile".into(),
        secondary: None,
    };
    let reference = target.object_ref(&());
    recorder.publish(&event, &reference).await.unwrap();
    // The same event again: the recorder patches its series.
    recorder.publish(&event, &reference).await.unwrap();

    let described = cluster.kubectl_ok(&["describe", "configmap", "target", "-n", &ns]);
    let events_section = described
        .split("Events:")
        .nth(1)
        .unwrap_or_else(|| panic!("no Events section:\n{described}"));
    assert!(
        events_section.contains("Warning")
            && events_section.contains("ThresholdsFailed")
            && events_section.contains("http_req_duration p(95)=512.3ms, want <500"),
        "{described}"
    );

    let core: Api<CoreEvent> = Api::namespaced(client.clone(), &ns);
    let listed = core
        .list(&ListParams::default().fields("involvedObject.name=target"))
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 1, "{:?}", listed.items);
    let stored = &listed.items[0];
    assert_eq!(stored.reason.as_deref(), Some("ThresholdsFailed"));
    assert_eq!(stored.involved_object.uid, target.metadata.uid);
    assert_eq!(
        stored.reporting_component.as_deref(),
        Some("stampede-operator")
    );
    assert_eq!(stored.series.as_ref().and_then(|s| s.count), Some(2));

    let v1: Api<EventV1> = Api::namespaced(client.clone(), &ns);
    let listed = v1
        .list(&ListParams::default().fields("regarding.name=target"))
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 1);
    assert_eq!(
        listed.items[0].note.as_deref(),
        Some("http_req_duration p(95)=512.3ms, want <500")
    );
    assert_eq!(
        listed.items[0].reporting_controller.as_deref(),
        Some("stampede-operator")
    );

    // A core Event written by another client reads as events.k8s.io too.
    let written: CoreEvent = serde_json::from_value(json!({
        "metadata": {"name": "target.core"},
        "involvedObject": {"kind": "ConfigMap", "name": "target", "namespace": ns},
        "reason": "Pulled", "message": "from core", "type": "Normal",
        "source": {"component": "kubelet"}, "count": 1
    }))
    .unwrap();
    core.create(&PostParams::default(), &written).await.unwrap();
    let read = v1.get("target.core").await.unwrap();
    assert_eq!(read.note.as_deref(), Some("from core"));
    assert_eq!(read.deprecated_count, Some(1));
    let table = cluster.kubectl_ok(&["get", "events", "-n", &ns]);
    assert!(
        table.contains("Pulled") && table.contains("ThresholdsFailed"),
        "{table}"
    );
    cluster.drop_namespace(&ns).await;
}
