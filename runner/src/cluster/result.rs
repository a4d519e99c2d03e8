//! `stampede report NAME`: the merged result of a LoadTest's last run, read from the ConfigMap
//! its status names (`status.resultRef`), printed as the k6-style summary `stampede run` prints.

use k8s_openapi::api::core::v1::ConfigMap;
use kube::Client;
use kube::api::Api;
use stampede_crds::LoadTest;

use crate::summary::Summary;

/// The key of the merged summary in the result ConfigMap.
const RESULT_KEY: &str = "result.json";

/// Why the result cannot be shown.
#[derive(Debug, thiserror::Error)]
pub enum ResultError {
    /// The API failed (not found included).
    #[error("{what}: {source}")]
    Api {
        /// What was read.
        what: String,
        /// The error.
        source: kube::Error,
    },
    /// The run has no result yet.
    #[error(
        "loadtest/{0} has no result yet (status.resultRef is set when a run finishes); follow it with `stampede wait {0}`"
    )]
    NotFinished(String),
    /// The ConfigMap has no readable result.
    #[error("ConfigMap {0} holds no readable {RESULT_KEY}: {1}")]
    Unreadable(String, String),
}

/// Reads the merged summary of LoadTest `name`'s last finished run.
pub async fn fetch_result(
    client: Client,
    namespace: &str,
    name: &str,
) -> Result<Summary, ResultError> {
    let tests: Api<LoadTest> = Api::namespaced(client.clone(), namespace);
    let test = tests.get(name).await.map_err(|source| ResultError::Api {
        what: format!("reading loadtest/{name} in namespace {namespace}"),
        source,
    })?;
    let config_map = test
        .status
        .and_then(|s| s.result_ref)
        .map(|r| r.config_map)
        .ok_or_else(|| ResultError::NotFinished(name.to_string()))?;
    let maps: Api<ConfigMap> = Api::namespaced(client, namespace);
    let map = maps
        .get(&config_map)
        .await
        .map_err(|source| ResultError::Api {
            what: format!("reading ConfigMap {config_map}"),
            source,
        })?;
    let text = map
        .data
        .and_then(|mut d| d.remove(RESULT_KEY))
        .ok_or_else(|| ResultError::Unreadable(config_map.clone(), "no such key".into()))?;
    serde_json::from_str(&text).map_err(|e| ResultError::Unreadable(config_map, e.to_string()))
}
