//! The labels of everything the operator owns, defined once, and the selectors derived from
//! them: the controller's watch of its Jobs and the reconciler's lists of one run's objects.

use std::collections::BTreeMap;

use crate::names;

/// Who manages the owned objects: the `app.kubernetes.io/managed-by` value, also the field
/// manager of everything the operator applies.
pub const OPERATOR: &str = "stampede-operator";
/// The standard label naming the application.
pub const NAME_KEY: &str = "app.kubernetes.io/name";
/// The application's name.
pub const NAME: &str = "stampede";
/// The standard label naming an object's part in the application.
pub const COMPONENT_KEY: &str = "app.kubernetes.io/component";
/// The standard label naming who manages an object.
pub const MANAGED_BY_KEY: &str = "app.kubernetes.io/managed-by";
/// Label every runner object carries: the LoadTest's name (see [`names::label_value`]).
pub const LOADTEST_LABEL: &str = "stampede.dev/loadtest";
/// Label of objects that belong to one run.
pub const RUN_LABEL: &str = "stampede.dev/run";

/// What part an owned object plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Component {
    /// The runners' Job, pods, reports and identity.
    Runner,
    /// The merged result ConfigMap (kept until the LoadTest goes).
    Result,
}

impl Component {
    fn value(self) -> &'static str {
        match self {
            Component::Runner => "runner",
            Component::Result => "result",
        }
    }
}

/// The labels of an object the operator owns: the standard three, plus the LoadTest's (when
/// given) and the run's (when the object belongs to one run).
pub fn owned(
    component: Component,
    loadtest: Option<&str>,
    run: Option<i64>,
) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::from([
        (NAME_KEY.to_string(), NAME.to_string()),
        (COMPONENT_KEY.to_string(), component.value().to_string()),
        (MANAGED_BY_KEY.to_string(), OPERATOR.to_string()),
    ]);
    if let Some(loadtest) = loadtest {
        labels.insert(LOADTEST_LABEL.to_string(), names::label_value(loadtest));
    }
    if let Some(run) = run {
        labels.insert(RUN_LABEL.to_string(), run.to_string());
    }
    labels
}

/// Everything the operator manages (the watch of its Jobs, which wakes their LoadTest).
pub fn managed_selector() -> String {
    format!("{MANAGED_BY_KEY}={OPERATOR}")
}

/// Which runs of one LoadTest a selector picks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runs {
    /// Every run.
    All,
    /// This run only.
    Only(i64),
    /// Every run but this one.
    AllBut(i64),
}

/// The runner objects of the LoadTest called `loadtest`, of `runs`.
pub fn runs_selector(loadtest: &str, runs: Runs) -> String {
    let loadtest = format!("{LOADTEST_LABEL}={}", names::label_value(loadtest));
    match runs {
        Runs::All => loadtest,
        Runs::Only(run) => format!("{loadtest},{RUN_LABEL}={run}"),
        Runs::AllBut(run) => format!("{loadtest},{RUN_LABEL}!={run}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_follow_the_labels() {
        let labels = owned(Component::Runner, Some("spike"), Some(2));
        assert_eq!(labels[MANAGED_BY_KEY], OPERATOR);
        assert_eq!(
            managed_selector(),
            "app.kubernetes.io/managed-by=stampede-operator"
        );
        assert_eq!(
            runs_selector("spike", Runs::Only(2)),
            format!(
                "{LOADTEST_LABEL}={},{RUN_LABEL}={}",
                labels[LOADTEST_LABEL], labels[RUN_LABEL]
            )
        );
        assert_eq!(
            runs_selector("spike", Runs::AllBut(2)),
            "stampede.dev/loadtest=spike,stampede.dev/run!=2"
        );
        assert_eq!(
            runs_selector("spike", Runs::All),
            "stampede.dev/loadtest=spike"
        );
        let result = owned(Component::Result, None, None);
        assert_eq!(result[COMPONENT_KEY], "result");
        assert!(!result.contains_key(LOADTEST_LABEL) && !result.contains_key(RUN_LABEL));
    }
}
