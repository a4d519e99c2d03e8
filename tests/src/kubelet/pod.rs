//! Pure pod building for the Job controller: a Job's pod from its template (names, labels,
//! annotations, owner reference, and the completion index of Indexed Jobs).

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{EnvVar, EnvVarSource, ObjectFieldSelector, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

/// Label and annotation keys the Job controller sets on its pods.
pub const JOB_NAME_LABEL: &str = "batch.kubernetes.io/job-name";
/// Legacy form of [`JOB_NAME_LABEL`], still set by Kubernetes.
pub const LEGACY_JOB_NAME_LABEL: &str = "job-name";
/// The owning Job's uid.
pub const CONTROLLER_UID_LABEL: &str = "batch.kubernetes.io/controller-uid";
/// Legacy form of [`CONTROLLER_UID_LABEL`].
pub const LEGACY_CONTROLLER_UID_LABEL: &str = "controller-uid";
/// The completion index of an Indexed Job's pod (label and annotation).
pub const COMPLETION_INDEX_KEY: &str = "batch.kubernetes.io/job-completion-index";
/// The environment variable carrying the completion index.
pub const COMPLETION_INDEX_ENV: &str = "JOB_COMPLETION_INDEX";

/// The characters Kubernetes draws random name suffixes from (lowercase alphanumerics without
/// vowels and look-alikes, so no words come out).
const SUFFIX_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// Why a Job's pod cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// The Job lacks a name, namespace or uid.
    #[error("job has no {0}")]
    MissingMeta(&'static str),
    /// The Job has no spec or its template no pod spec.
    #[error("job has no pod template spec")]
    MissingTemplate,
}

/// A random 5-character suffix like the API server's `generateName`.
pub fn random_suffix() -> String {
    (0..5)
        .map(|_| {
            let i = fastrand::usize(..SUFFIX_ALPHABET.len());
            char::from(SUFFIX_ALPHABET[i])
        })
        .collect()
}

/// The pod name prefix (`generateName`): `<job>-` or `<job>-<index>-`.
pub fn name_prefix(job_name: &str, index: Option<i32>) -> String {
    match index {
        Some(i) => format!("{job_name}-{i}-"),
        None => format!("{job_name}-"),
    }
}

/// The completion index of a pod, from its annotation (or label).
pub fn completion_index(pod: &Pod) -> Option<i32> {
    let from = |map: &Option<BTreeMap<String, String>>| {
        map.as_ref()
            .and_then(|m| m.get(COMPLETION_INDEX_KEY))
            .and_then(|v| v.trim().parse::<i32>().ok())
    };
    from(&pod.metadata.annotations).or_else(|| from(&pod.metadata.labels))
}

/// The uid of the Job controlling this pod (its controller owner reference of kind Job).
pub fn owner_job_uid(pod: &Pod) -> Option<&str> {
    pod.metadata
        .owner_references
        .iter()
        .flatten()
        .find(|r| r.controller == Some(true) && r.kind == "Job" && r.api_version == "batch/v1")
        .map(|r| r.uid.as_str())
}

/// Builds the pod for `index` (Indexed) or a NonIndexed pod, named with `suffix`.
pub fn pod_for_job(job: &Job, index: Option<i32>, suffix: &str) -> Result<Pod, TemplateError> {
    let job_name = job
        .metadata
        .name
        .as_deref()
        .ok_or(TemplateError::MissingMeta("name"))?;
    let namespace = job
        .metadata
        .namespace
        .as_deref()
        .ok_or(TemplateError::MissingMeta("namespace"))?;
    let uid = job
        .metadata
        .uid
        .as_deref()
        .ok_or(TemplateError::MissingMeta("uid"))?;
    let template = &job
        .spec
        .as_ref()
        .ok_or(TemplateError::MissingTemplate)?
        .template;
    let mut spec = template
        .spec
        .clone()
        .ok_or(TemplateError::MissingTemplate)?;
    let template_meta = template.metadata.clone().unwrap_or_default();

    let mut labels = template_meta.labels.unwrap_or_default();
    labels.insert(LEGACY_JOB_NAME_LABEL.into(), job_name.into());
    labels.insert(JOB_NAME_LABEL.into(), job_name.into());
    labels.insert(LEGACY_CONTROLLER_UID_LABEL.into(), uid.into());
    labels.insert(CONTROLLER_UID_LABEL.into(), uid.into());
    let mut annotations = template_meta.annotations.unwrap_or_default();

    if let Some(i) = index {
        labels.insert(COMPLETION_INDEX_KEY.into(), i.to_string());
        annotations.insert(COMPLETION_INDEX_KEY.into(), i.to_string());
        if spec.hostname.is_none() {
            spec.hostname = Some(format!("{job_name}-{i}"));
        }
        // Like Kubernetes: JOB_COMPLETION_INDEX through the downward API, in every container
        // that does not define it.
        let index_env = EnvVar {
            name: COMPLETION_INDEX_ENV.into(),
            value: None,
            value_from: Some(EnvVarSource {
                field_ref: Some(ObjectFieldSelector {
                    api_version: Some("v1".into()),
                    field_path: format!("metadata.annotations['{COMPLETION_INDEX_KEY}']"),
                }),
                ..EnvVarSource::default()
            }),
        };
        let containers = spec
            .containers
            .iter_mut()
            .chain(spec.init_containers.iter_mut().flatten());
        for container in containers {
            let env = container.env.get_or_insert_with(Vec::new);
            if !env.iter().any(|e| e.name == COMPLETION_INDEX_ENV) {
                env.push(index_env.clone());
            }
        }
    }

    let prefix = name_prefix(job_name, index);
    Ok(Pod {
        metadata: ObjectMeta {
            name: Some(format!("{prefix}{suffix}")),
            generate_name: Some(prefix),
            namespace: Some(namespace.into()),
            labels: Some(labels),
            annotations: (!annotations.is_empty()).then_some(annotations),
            owner_references: Some(vec![OwnerReference {
                api_version: "batch/v1".into(),
                kind: "Job".into(),
                name: job_name.into(),
                uid: uid.into(),
                controller: Some(true),
                block_owner_deletion: Some(true),
            }]),
            ..ObjectMeta::default()
        },
        spec: Some(spec),
        status: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::batch::v1::JobSpec;
    use k8s_openapi::api::core::v1::{Container, PodSpec, PodTemplateSpec};

    fn job() -> Job {
        Job {
            metadata: ObjectMeta {
                name: Some("load".into()),
                namespace: Some("team".into()),
                uid: Some("uid-1".into()),
                ..ObjectMeta::default()
            },
            spec: Some(JobSpec {
                completions: Some(3),
                parallelism: Some(3),
                completion_mode: Some("Indexed".into()),
                template: PodTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: Some(BTreeMap::from([("app".into(), "stampede".into())])),
                        annotations: Some(BTreeMap::from([("a".into(), "b".into())])),
                        ..ObjectMeta::default()
                    }),
                    spec: Some(PodSpec {
                        restart_policy: Some("Never".into()),
                        containers: vec![
                            Container {
                                name: "runner".into(),
                                image: Some("ghcr.io/acme/stampede:0.1.0".into()),
                                env: Some(vec![EnvVar {
                                    name: "A".into(),
                                    value: Some("1".into()),
                                    value_from: None,
                                }]),
                                ..Container::default()
                            },
                            Container {
                                name: "side".into(),
                                env: Some(vec![EnvVar {
                                    name: COMPLETION_INDEX_ENV.into(),
                                    value: Some("mine".into()),
                                    value_from: None,
                                }]),
                                ..Container::default()
                            },
                        ],
                        ..PodSpec::default()
                    }),
                },
                ..JobSpec::default()
            }),
            status: None,
        }
    }

    #[test]
    fn indexed_pods_get_names_labels_annotations_hostname_and_env() {
        let job = job();
        let pods: Vec<Pod> = (0..3)
            .map(|i| pod_for_job(&job, Some(i), &random_suffix()).unwrap())
            .collect();
        for (i, pod) in pods.iter().enumerate() {
            let name = pod.metadata.name.as_deref().unwrap();
            let prefix = format!("load-{i}-");
            assert!(name.starts_with(&prefix), "{name}");
            let suffix = &name[prefix.len()..];
            assert_eq!(suffix.len(), 5);
            assert!(
                suffix
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
            );
            assert_eq!(pod.metadata.generate_name.as_deref(), Some(prefix.as_str()));
            assert_eq!(pod.metadata.namespace.as_deref(), Some("team"));
            let labels = pod.metadata.labels.as_ref().unwrap();
            assert_eq!(labels["app"], "stampede");
            assert_eq!(labels["job-name"], "load");
            assert_eq!(labels["batch.kubernetes.io/job-name"], "load");
            assert_eq!(labels["controller-uid"], "uid-1");
            assert_eq!(labels["batch.kubernetes.io/controller-uid"], "uid-1");
            assert_eq!(labels[COMPLETION_INDEX_KEY], i.to_string());
            let annotations = pod.metadata.annotations.as_ref().unwrap();
            assert_eq!(annotations[COMPLETION_INDEX_KEY], i.to_string());
            assert_eq!(annotations["a"], "b");
            assert_eq!(completion_index(pod), Some(i as i32));
            let spec = pod.spec.as_ref().unwrap();
            assert_eq!(spec.hostname.as_deref(), Some(format!("load-{i}").as_str()));
            let env = spec.containers[0].env.as_ref().unwrap();
            assert_eq!(env[0].name, "A");
            assert_eq!(env[1].name, "JOB_COMPLETION_INDEX");
            assert_eq!(
                env[1]
                    .value_from
                    .as_ref()
                    .unwrap()
                    .field_ref
                    .as_ref()
                    .unwrap()
                    .field_path,
                "metadata.annotations['batch.kubernetes.io/job-completion-index']"
            );
            // A container defining the variable keeps its own.
            let side = spec.containers[1].env.as_ref().unwrap();
            assert_eq!(side.len(), 1);
            assert_eq!(side[0].value.as_deref(), Some("mine"));
            let owner = &pod.metadata.owner_references.as_ref().unwrap()[0];
            assert_eq!(
                (owner.api_version.as_str(), owner.kind.as_str()),
                ("batch/v1", "Job")
            );
            assert_eq!((owner.name.as_str(), owner.uid.as_str()), ("load", "uid-1"));
            assert_eq!(owner.controller, Some(true));
            assert_eq!(owner.block_owner_deletion, Some(true));
            assert_eq!(owner_job_uid(pod), Some("uid-1"));
        }
    }

    #[test]
    fn non_indexed_pods_have_no_index() {
        let pod = pod_for_job(&job(), None, "bcdfg").unwrap();
        assert_eq!(pod.metadata.name.as_deref(), Some("load-bcdfg"));
        assert_eq!(pod.metadata.generate_name.as_deref(), Some("load-"));
        assert!(
            !pod.metadata
                .labels
                .as_ref()
                .unwrap()
                .contains_key(COMPLETION_INDEX_KEY)
        );
        assert_eq!(completion_index(&pod), None);
        let spec = pod.spec.as_ref().unwrap();
        assert_eq!(spec.hostname, None);
        assert_eq!(spec.containers[0].env.as_ref().unwrap().len(), 1);
    }

    #[test]
    fn template_hostname_is_kept() {
        let mut job = job();
        let spec = job.spec.as_mut().unwrap().template.spec.as_mut().unwrap();
        spec.hostname = Some("fixed".into());
        let pod = pod_for_job(&job, Some(1), "bcdfg").unwrap();
        assert_eq!(pod.spec.unwrap().hostname.as_deref(), Some("fixed"));
    }

    #[test]
    fn incomplete_jobs_are_errors_not_panics() {
        let mut no_uid = job();
        no_uid.metadata.uid = None;
        assert_eq!(
            pod_for_job(&no_uid, None, "x"),
            Err(TemplateError::MissingMeta("uid"))
        );
        let mut no_spec = job();
        no_spec.spec = None;
        assert_eq!(
            pod_for_job(&no_spec, None, "x"),
            Err(TemplateError::MissingTemplate)
        );
    }
}
