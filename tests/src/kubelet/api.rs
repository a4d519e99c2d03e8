//! Small API helpers shared by the Job controller and the pod runner: error classification,
//! status writes (merge patch on the status subresource, retried on conflicts), immediate pod
//! deletion, and de-duplicated error reporting.

use std::collections::HashSet;
use std::fmt::Debug;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// How often a status write is tried when the server answers 409 Conflict.
const CONFLICT_ATTEMPTS: usize = 5;

/// Whether `error` is an API error with this HTTP code.
pub fn is_code(error: &kube::Error, code: u16) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == code)
}

/// Whether `error` is 404 Not Found.
pub fn is_not_found(error: &kube::Error) -> bool {
    is_code(error, 404)
}

/// Writes `status` through the status subresource with a JSON merge patch. On 409 Conflict it
/// re-reads the object (which fails with 404 if it is gone) and tries again.
pub async fn patch_status<K, S>(api: &Api<K>, name: &str, status: &S) -> Result<(), kube::Error>
where
    K: kube::Resource + Clone + DeserializeOwned + Debug,
    S: Serialize + Debug,
{
    let patch = Patch::Merge(serde_json::json!({ "status": status }));
    let mut attempt = 0;
    loop {
        attempt += 1;
        match api
            .patch_status(name, &PatchParams::default(), &patch)
            .await
        {
            Ok(_) => return Ok(()),
            Err(error) if is_code(&error, 409) && attempt < CONFLICT_ATTEMPTS => {
                api.get(name).await?;
                tokio::time::sleep(Duration::from_millis(20 * attempt as u64)).await;
            }
            Err(error) => return Err(error),
        }
    }
}

/// Deletes a pod with `gracePeriodSeconds: 0` (the kubelet's confirmation that it stopped);
/// a pod already gone is fine.
pub async fn delete_now(api: &Api<Pod>, name: &str) -> Result<(), kube::Error> {
    match api
        .delete(name, &DeleteParams::default().grace_period(0))
        .await
    {
        Ok(_) => Ok(()),
        Err(error) if is_not_found(&error) => Ok(()),
        Err(error) => Err(error),
    }
}

/// Prints each distinct message to stderr once (so a persistent failure retried every tick
/// does not flood test output).
#[derive(Debug, Default)]
pub struct Reporter {
    seen: Mutex<HashSet<String>>,
}

impl Reporter {
    /// Reports `message` unless it was reported before.
    pub fn report(&self, message: String) {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if seen.len() < 10_000 && seen.insert(message.clone()) {
            eprintln!("kubelet: {message}");
        }
    }
}
