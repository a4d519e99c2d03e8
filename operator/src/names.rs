//! Deterministic names of what a LoadTest owns, so a restarted operator finds them again.
//! Names stay valid DNS labels: long LoadTest names are shortened with a stable hash suffix.

/// The longest name we build: a Job's pods are `<job>-<index>-<5 chars>` and their hostname
/// `<job>-<index>` must stay a DNS label (63), so the Job name keeps room for both.
const MAX_BASE: usize = 40;

/// The names of everything one LoadTest run owns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    base: String,
}

impl Names {
    /// Names for the LoadTest called `loadtest`.
    pub fn new(loadtest: &str) -> Names {
        Names {
            base: shorten(loadtest, MAX_BASE),
        }
    }

    /// The runner Job of run `run`: a new run gets a new Job, the old one can finish aborting.
    pub fn job(&self, run: i64) -> String {
        format!("{}-run{run}", self.base)
    }

    /// Runner `index`'s report ConfigMap in run `run`.
    pub fn report(&self, run: i64, index: u64) -> String {
        format!("{}{index}", self.report_prefix(run))
    }

    /// What every report ConfigMap name of run `run` starts with (the agent appends its index).
    pub fn report_prefix(&self, run: i64) -> String {
        format!("{}-run{run}-report-", self.base)
    }

    /// The ServiceAccount, Role and RoleBinding of the runners (one per LoadTest; its rules
    /// follow the current run's reports).
    pub fn runner_identity(&self) -> String {
        format!("{}-runner", self.base)
    }

    /// The merged result ConfigMap (kept until the LoadTest goes).
    pub fn result(&self) -> String {
        format!("{}-result", self.base)
    }
}

/// The value of the `stampede.dev/loadtest` label for the LoadTest called `loadtest`: the name
/// itself when it fits a label value (63 characters), else shortened like the names, as an
/// API server refuses longer label values.
pub fn label_value(loadtest: &str) -> String {
    shorten(loadtest, MAX_LABEL_VALUE)
}

/// The longest label value an API server accepts.
const MAX_LABEL_VALUE: usize = 63;

/// `name` when it fits in `max` characters, else its first part plus `-` and 16 hex digits of
/// the whole name's SHA-256: a collision made on purpose would take ~2^32 tries (a 32-bit hash
/// took seconds), and even then the names only meet objects the ownership check refuses.
fn shorten(name: &str, max: usize) -> String {
    if name.len() <= max {
        return name.to_string();
    }
    let digest = ring::digest::digest(&ring::digest::SHA256, name.as_bytes());
    let hash: String = digest.as_ref()[..8]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    let keep = max.saturating_sub(hash.len() + 1);
    let prefix: String = name.chars().take(keep).collect();
    format!("{}-{hash}", prefix.trim_end_matches(['-', '.']))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_fit_what_an_api_server_accepts() {
        assert_eq!(label_value("buy-stock-spike"), "buy-stock-spike");
        let long = format!("{}.shop.example", "a".repeat(240));
        let value = label_value(&long);
        assert_eq!(value.len(), 63, "{value}");
        assert!(
            value.ends_with(|c: char| c.is_ascii_alphanumeric()),
            "{value}"
        );
        assert_eq!(value, label_value(&long), "stable");
        assert_ne!(value, label_value(&format!("{long}x")), "distinct");
    }

    #[test]
    fn names_are_deterministic_and_distinct() {
        let names = Names::new("buy-stock-spike");
        assert_eq!(names.job(1), "buy-stock-spike-run1");
        assert_eq!(names.report(1, 2), "buy-stock-spike-run1-report-2");
        assert_eq!(names.runner_identity(), "buy-stock-spike-runner");
        assert_eq!(names.result(), "buy-stock-spike-result");
        assert_eq!(Names::new("buy-stock-spike"), names);
    }

    #[test]
    fn long_names_are_shortened_stably_and_stay_dns_labels() {
        let long = "a".repeat(30) + &"b".repeat(30);
        let other = "a".repeat(30) + &"c".repeat(30);
        let names = Names::new(&long);
        assert_eq!(names, Names::new(&long));
        assert_ne!(names.job(1), Names::new(&other).job(1));
        // The pod hostname `<job>-<index>` of a 1000-runner job is still a DNS label.
        let hostname = format!("{}-999", names.job(99));
        assert!(hostname.len() <= 63, "{hostname}");
        assert!(names.report(99, 999).len() <= 63);
        // 23 characters of the name, then 16 hex digits of its SHA-256.
        let job = names.job(1);
        assert_eq!(job.len(), 40 + "-run1".len(), "{job}");
        assert!(job.starts_with(&"a".repeat(23)), "{job}");
    }
}
