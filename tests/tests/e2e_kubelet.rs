//! End to end through kubectl: the CRDs and an example LoadTest applied and listed with their
//! printer columns, and Jobs run to completion (or failure) by the process kubelet, with the
//! fault hooks a real cluster cannot inject. `STAMPEDE_E2E_KUBECONFIG` points it at a real
//! cluster instead (fault tests are skipped there).

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, PostParams};
use kube::runtime::wait::await_condition;
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::{Value, json};
use stampede_tests::cluster::{Cluster, repo_path, runner_image};

/// An Indexed Job of `completions` pods running `stampede ARGS...`.
fn job(name: &str, completions: i32, args: &[&str], extra: Value) -> Job {
    let mut job = json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "completionMode": "Indexed", "completions": completions, "parallelism": completions,
            "backoffLimit": 0,
            "template": {"spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 5,
                "containers": [{"name": "runner", "image": runner_image(),
                                "command": ["stampede"], "args": args}]}}
        }
    });
    json_patch::merge(&mut job, &extra);
    serde_json::from_value(job).unwrap()
}

async fn wait_job<F>(jobs: &Api<Job>, name: &str, timeout: Duration, done: F) -> Job
where
    F: Fn(&Job) -> bool + Send + 'static,
{
    let condition = await_condition(jobs.clone(), name, move |j: Option<&Job>| {
        j.is_some_and(&done)
    });
    tokio::time::timeout(timeout, condition)
        .await
        .unwrap_or_else(|_| panic!("job {name} did not get there in {timeout:?}"))
        .unwrap()
        .unwrap()
}

fn has_condition(job: &Job, kind: &str) -> Option<String> {
    job.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == kind && c.status == "True")
        .map(|c| c.reason.clone().unwrap_or_default())
}

async fn job_pods(cluster: &Cluster, ns: &str, job: &str) -> Vec<Pod> {
    let pods: Api<Pod> = Api::namespaced(cluster.client().await, ns);
    pods.list(&ListParams::default().labels(&format!("job-name={job}")))
        .await
        .unwrap()
        .items
}

async fn wait_pod<F>(cluster: &Cluster, ns: &str, job: &str, what: &str, ok: F) -> Pod
where
    F: Fn(&Pod) -> bool,
{
    let pods: Api<Pod> = Api::namespaced(cluster.client().await, ns);
    let config = watcher::Config::default().labels(&format!("job-name={job}"));
    let mut changes = watcher(pods, config).applied_objects().boxed();
    let found = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(pod) = changes.try_next().await.unwrap() {
            if ok(&pod) {
                return pod;
            }
        }
        panic!("the pod watch ended");
    })
    .await;
    found.unwrap_or_else(|_| panic!("no pod of job {job} is {what} after 30 s"))
}

/// Waits until every pod of `job` is gone.
async fn wait_pods_gone(cluster: &Cluster, ns: &str, job: &str) {
    let pods: Api<Pod> = Api::namespaced(cluster.client().await, ns);
    for pod in job_pods(cluster, ns, job).await {
        let name = pod.metadata.name.unwrap();
        let gone = await_condition(pods.clone(), &name, |p: Option<&Pod>| p.is_none());
        tokio::time::timeout(Duration::from_secs(60), gone)
            .await
            .unwrap_or_else(|_| panic!("pod {name} outlived its job"))
            .unwrap();
    }
}

fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

fn terminated_reason(pod: &Pod) -> Option<(i32, String)> {
    let state = pod
        .status
        .as_ref()?
        .container_statuses
        .as_ref()?
        .first()?
        .state
        .as_ref()?;
    let terminated = state.terminated.as_ref()?;
    Some((
        terminated.exit_code,
        terminated.reason.clone().unwrap_or_default(),
    ))
}

fn waiting_reason(pod: &Pod) -> Option<String> {
    pod.status
        .as_ref()?
        .container_statuses
        .as_ref()?
        .first()?
        .state
        .as_ref()?
        .waiting
        .as_ref()?
        .reason
        .clone()
}

#[tokio::test]
async fn crds_and_a_loadtest_through_kubectl_and_a_job_to_completion() {
    let mut cluster = Cluster::start().await;
    cluster.start_kubelet().await;
    let ns = cluster.namespace("e2e-done").await;

    let crds = repo_path("crds");
    assert!(
        cluster
            .kubectl_ok(&["apply", "-f", crds.to_str().unwrap()])
            .contains("loadtests.stampede.dev")
    );
    cluster.kubectl_ok(&[
        "wait",
        "--for=condition=established",
        "--timeout=30s",
        "crd/loadtests.stampede.dev",
    ]);
    let example = repo_path("examples/spike-test.yaml");
    let applied = cluster.kubectl_ok(&["-n", &ns, "apply", "-f", example.to_str().unwrap()]);
    assert!(
        applied.contains("loadtest.stampede.dev/") && applied.contains("created"),
        "{applied}"
    );

    let listed = cluster.kubectl_ok(&["-n", &ns, "get", "lt"]);
    let header: Vec<&str> = listed.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "NAME", "PHASE", "VUS", "RPS", "P95", "FAILED", "PASSED", "AGE"
        ]
    );
    assert_eq!(listed.lines().count(), 2, "{listed}");
    let wide = cluster.kubectl_ok(&["-n", &ns, "get", "loadtests.stampede.dev", "-o", "name"]);
    assert!(wide.starts_with("loadtest.stampede.dev/"), "{wide}");

    // A one-Job workload: the product's own demo (a real load test of the in-process demo
    // server), as an Indexed Job of one pod, run to completion by the kubelet.
    let manifest = tempfile::NamedTempFile::new().unwrap();
    let workload = job("demo", 1, &["demo", "--duration-scale", "0.2"], json!({}));
    std::fs::write(manifest.path(), serde_json::to_string(&workload).unwrap()).unwrap();
    cluster.kubectl_ok(&["-n", &ns, "apply", "-f", manifest.path().to_str().unwrap()]);
    let waited = cluster.kubectl_ok(&[
        "-n",
        &ns,
        "wait",
        "--for=condition=complete",
        "--timeout=120s",
        "job/demo",
    ]);
    assert!(waited.contains("job.batch/demo condition met"), "{waited}");

    let jobs: Api<Job> = Api::namespaced(cluster.client().await, &ns);
    let done = jobs.get("demo").await.unwrap();
    let status = done.status.unwrap();
    assert_eq!((status.succeeded, status.failed.unwrap_or(0)), (Some(1), 0));
    assert_eq!(status.completed_indexes.as_deref(), Some("0"));
    assert!(status.completion_time.is_some());
    let table = cluster.kubectl_ok(&["-n", &ns, "get", "job", "demo"]);
    assert!(
        table
            .lines()
            .nth(1)
            .unwrap()
            .split_whitespace()
            .any(|c| c == "1/1"),
        "{table}"
    );

    let pod = job_pods(&cluster, &ns, "demo").await.pop().unwrap();
    assert_eq!(phase(&pod), "Succeeded");
    assert_eq!(terminated_reason(&pod), Some((0, "Completed".to_string())));
    let name = pod.metadata.name.clone().unwrap();
    let logs = cluster.kubectl_ok(&["-n", &ns, "logs", &name]);
    assert!(
        logs.contains("thresholds held"),
        "the demo's verdict is in the pod log:\n{logs}"
    );
    cluster.drop_namespace(&ns).await;
}

#[tokio::test]
async fn indexed_pods_follow_the_naming_and_env_conventions() {
    let mut cluster = Cluster::start().await;
    cluster.start_kubelet().await;
    let ns = cluster.namespace("e2e-indexed").await;
    let jobs: Api<Job> = Api::namespaced(cluster.client().await, &ns);
    // `stampede crd` exits 0 at once: three quick completions.
    jobs.create(&PostParams::default(), &job("idx", 3, &["crd"], json!({})))
        .await
        .unwrap();
    let done = wait_job(&jobs, "idx", Duration::from_secs(60), |j| {
        has_condition(j, "Complete").is_some()
    })
    .await;
    assert_eq!(
        done.status.as_ref().unwrap().completed_indexes.as_deref(),
        Some("0-2")
    );
    let mut indexes = Vec::new();
    for pod in job_pods(&cluster, &ns, "idx").await {
        let name = pod.metadata.name.clone().unwrap();
        let annotations = pod.metadata.annotations.clone().unwrap_or_default();
        let index = annotations["batch.kubernetes.io/job-completion-index"].clone();
        assert!(name.starts_with(&format!("idx-{index}-")), "{name}");
        let spec = pod.spec.unwrap();
        assert_eq!(
            spec.hostname.as_deref(),
            Some(format!("idx-{index}").as_str())
        );
        let env = spec.containers[0].env.clone().unwrap_or_default();
        // As on a real cluster: the index reaches the container through the downward API.
        let from_annotation = |e: &k8s_openapi::api::core::v1::EnvVar| {
            e.value_from
                .as_ref()
                .and_then(|v| v.field_ref.as_ref())
                .map(|f| f.field_path.as_str())
                == Some("metadata.annotations['batch.kubernetes.io/job-completion-index']")
        };
        assert!(
            env.iter()
                .any(|e| e.name == "JOB_COMPLETION_INDEX" && from_annotation(e)),
            "{env:?}"
        );
        let owner = &pod.metadata.owner_references.unwrap()[0];
        assert_eq!((owner.kind.as_str(), owner.controller), ("Job", Some(true)));
        indexes.push(index);
    }
    indexes.sort();
    assert_eq!(indexes, ["0", "1", "2"]);
    cluster.drop_namespace(&ns).await;
}

#[tokio::test]
async fn a_failing_pod_fails_the_job_past_its_backoff_limit() {
    let mut cluster = Cluster::start().await;
    cluster.start_kubelet().await;
    let ns = cluster.namespace("e2e-fail").await;
    let jobs: Api<Job> = Api::namespaced(cluster.client().await, &ns);
    // `stampede validate` of a missing file exits non-zero.
    jobs.create(
        &PostParams::default(),
        &job("bad", 1, &["validate", "/no/such/manifest.yaml"], json!({})),
    )
    .await
    .unwrap();
    let waited = cluster.kubectl_ok(&[
        "-n",
        &ns,
        "wait",
        "--for=condition=failed",
        "--timeout=60s",
        "job/bad",
    ]);
    assert!(waited.contains("condition met"), "{waited}");
    let failed = jobs.get("bad").await.unwrap();
    assert_eq!(
        has_condition(&failed, "Failed").as_deref(),
        Some("BackoffLimitExceeded")
    );
    assert_eq!(failed.status.unwrap().failed, Some(1));
    let pod = job_pods(&cluster, &ns, "bad").await.pop().unwrap();
    assert_eq!(phase(&pod), "Failed");
    let (code, reason) = terminated_reason(&pod).unwrap();
    assert!(code != 0 && reason == "Error", "{code} {reason}");
    cluster.drop_namespace(&ns).await;
}

/// A free loopback port for a long-running `stampede demo-server` pod.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn server_job(cluster: &Cluster, ns: &str, name: &str, extra: Value) -> u16 {
    let port = free_port();
    let jobs: Api<Job> = Api::namespaced(cluster.client().await, ns);
    let listen = format!("127.0.0.1:{port}");
    jobs.create(
        &PostParams::default(),
        &job(name, 1, &["demo-server", "--listen", &listen], extra),
    )
    .await
    .unwrap();
    port
}

async fn wait_listening(port: u16) {
    for _ in 0..300 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("nothing listens on {port} after 30 s");
}

async fn wait_closed(port: u16) {
    for _ in 0..300 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("port {port} still accepts after 30 s: the process was not killed");
}

#[tokio::test]
async fn killed_and_oom_killed_pods_fail_their_jobs() {
    let mut cluster = Cluster::start().await;
    if cluster.is_real() {
        return; // Fault hooks exist only in the process kubelet.
    }
    cluster.start_kubelet().await;
    let ns = cluster.namespace("e2e-kill").await;
    let jobs: Api<Job> = Api::namespaced(cluster.client().await, &ns);
    for (name, oom) in [("killed", false), ("oom", true)] {
        let port = server_job(&cluster, &ns, name, json!({})).await;
        wait_listening(port).await;
        let pod = wait_pod(&cluster, &ns, name, "Running", |p| phase(p) == "Running").await;
        let pod_name = pod.metadata.name.unwrap();
        let faults = cluster.kubelet().unwrap().faults();
        let found = if oom {
            faults.oom_kill_pod(&ns, &pod_name)
        } else {
            faults.kill_pod(&ns, &pod_name)
        };
        assert!(found, "the kubelet runs {pod_name}");
        wait_closed(port).await;
        let failed = wait_job(&jobs, name, Duration::from_secs(30), |j| {
            has_condition(j, "Failed").is_some()
        })
        .await;
        assert_eq!(
            has_condition(&failed, "Failed").as_deref(),
            Some("BackoffLimitExceeded")
        );
        let pod = wait_pod(&cluster, &ns, name, "Failed", |p| phase(p) == "Failed").await;
        let expected = if oom { "OOMKilled" } else { "Error" };
        assert_eq!(terminated_reason(&pod), Some((137, expected.to_string())));
    }
    cluster.drop_namespace(&ns).await;
}

#[tokio::test]
async fn unschedulable_and_unpullable_pods_stay_pending() {
    let mut cluster = Cluster::start().await;
    if cluster.is_real() {
        return;
    }
    cluster.start_kubelet().await;
    let ns = cluster.namespace("e2e-pending").await;
    let jobs: Api<Job> = Api::namespaced(cluster.client().await, &ns);
    cluster
        .kubelet()
        .unwrap()
        .faults()
        .unschedulable_job("nowhere");
    jobs.create(
        &PostParams::default(),
        &job("nowhere", 1, &["crd"], json!({})),
    )
    .await
    .unwrap();
    let pod = wait_pod(&cluster, &ns, "nowhere", "unschedulable", |p| {
        p.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| {
                c.iter().any(|c| {
                    c.type_ == "PodScheduled"
                        && c.status == "False"
                        && c.reason.as_deref() == Some("Unschedulable")
                })
            })
    })
    .await;
    assert_eq!(phase(&pod), "Pending");
    let table = cluster.kubectl_ok(&["-n", &ns, "get", "pods", "-l", "job-name=nowhere"]);
    assert!(table.contains("Pending"), "{table}");

    let broken = "registry.invalid/stampede:broken";
    cluster.kubelet().unwrap().faults().fail_image_pull(broken);
    let mut unpullable = job("unpullable", 1, &["crd"], json!({}));
    unpullable
        .spec
        .as_mut()
        .unwrap()
        .template
        .spec
        .as_mut()
        .unwrap()
        .containers[0]
        .image = Some(broken.into());
    jobs.create(&PostParams::default(), &unpullable)
        .await
        .unwrap();
    let pod = wait_pod(&cluster, &ns, "unpullable", "failing its image pull", |p| {
        waiting_reason(p).is_some_and(|r| r == "ErrImagePull" || r == "ImagePullBackOff")
    })
    .await;
    assert_eq!(phase(&pod), "Pending");
    let table = cluster.kubectl_ok(&["-n", &ns, "get", "pods", "-l", "job-name=unpullable"]);
    assert!(
        table.contains("ErrImagePull") || table.contains("ImagePullBackOff"),
        "{table}"
    );
    cluster.drop_namespace(&ns).await;
}

#[tokio::test]
async fn deleting_a_job_or_passing_its_deadline_kills_its_processes() {
    let mut cluster = Cluster::start().await;
    cluster.start_kubelet().await;
    let ns = cluster.namespace("e2e-stop").await;
    let jobs: Api<Job> = Api::namespaced(cluster.client().await, &ns);

    // kubectl delete (background propagation): the pod is deleted gracefully, its process gets
    // SIGTERM, and the pod goes away.
    let port = server_job(&cluster, &ns, "deleted", json!({})).await;
    let local = !cluster.is_real();
    if local {
        wait_listening(port).await;
    }
    wait_pod(&cluster, &ns, "deleted", "Running", |p| {
        phase(p) == "Running"
    })
    .await;
    cluster.kubectl_ok(&[
        "-n",
        &ns,
        "delete",
        "job",
        "deleted",
        "--wait=true",
        "--timeout=60s",
    ]);
    if local {
        wait_closed(port).await;
    }
    wait_pods_gone(&cluster, &ns, "deleted").await;

    // activeDeadlineSeconds: the Job fails with DeadlineExceeded and its pod is stopped.
    let port = server_job(
        &cluster,
        &ns,
        "deadline",
        json!({"spec": {"activeDeadlineSeconds": 2}}),
    )
    .await;
    let failed = wait_job(&jobs, "deadline", Duration::from_secs(60), |j| {
        has_condition(j, "Failed").is_some()
    })
    .await;
    assert_eq!(
        has_condition(&failed, "Failed").as_deref(),
        Some("DeadlineExceeded")
    );
    if local {
        wait_closed(port).await;
    }
    cluster.drop_namespace(&ns).await;
}
