//! k6's `reserveVUsForGracefulRampDowns` (keep VUs reserved for `gracefulRampDown` after a
//! ramp-down) in O(n log n) instead of k6's O(n²) look-ahead, with the same steps as k6.
//!
//! k6 looks ahead from every downward step for the count to come back up within the grace
//! period; a ramp 10 000 → 1 000 followed by a partial climb made that 18 M comparisons
//! (145 ms to validate one manifest). Here the look-ahead is a search in a max tree, the
//! window a binary search on time, and the "last downward slope" a precomputed run end.

use super::plan::VuStep;

/// The steps after a drop in planned VUs keep the previous count until `grace` has passed,
/// unless the count comes back up first or the executor's hard end comes first. `raw` is in
/// time order (instants never decrease), as [`super::plan`] produces it.
pub(super) fn reserve_for_graceful_ramp_down(
    raw: &[VuStep],
    grace: u64,
    executor_end: u64,
) -> Vec<VuStep> {
    let counts = MaxTree::new(raw.iter().map(|step| step.planned_vus));
    let decreasing_run_end = decreasing_run_ends(raw);
    let mut reserved: Vec<VuStep> = Vec::new();
    let mut last_planned = 0u64;
    // k6 `lastDownwardSlopeStepNum`: the look-ahead never goes back over a ramp-down it has
    // already walked.
    let mut last_downward_slope = 0usize;
    let mut index = 0usize;
    while index < raw.len() {
        let step = raw[index];
        if index == 0 || step.planned_vus > last_planned {
            reserved.push(step);
            last_planned = step.planned_vus;
            index += 1;
            continue;
        }
        if step.planned_vus == last_planned {
            index += 1;
            continue;
        }
        let timeout = step.at_nanos().saturating_add(grace);
        let look_from = (index + 1).max(last_downward_slope);
        let window_end = look_from
            + raw
                .get(look_from..)
                .unwrap_or_default()
                .partition_point(|next| next.at_nanos() <= timeout);
        let back_up_at = counts.first_at_least(look_from, window_end, last_planned);
        // k6 walks `look_from..scan_end` and moves the slope mark along the steps that keep
        // falling right after `look_from - 1`.
        let scan_end = back_up_at.unwrap_or(window_end);
        if look_from < scan_end && raw[look_from - 1].planned_vus > raw[look_from].planned_vus {
            last_downward_slope = decreasing_run_end[look_from - 1].min(scan_end - 1);
        }
        if let Some(ahead) = back_up_at {
            index = ahead;
            continue;
        }
        if timeout >= executor_end {
            break;
        }
        reserved.push(VuStep::planned(timeout, step.planned_vus));
        last_planned = step.planned_vus;
        index += 1;
    }
    reserved
}

/// For each index `k`, the last index `m ≥ k` with `raw[k] > raw[k+1] > … > raw[m]` in
/// planned VUs.
fn decreasing_run_ends(raw: &[VuStep]) -> Vec<usize> {
    let mut ends = vec![0usize; raw.len()];
    for k in (0..raw.len()).rev() {
        let falls_next = raw
            .get(k + 1)
            .is_some_and(|next| raw[k].planned_vus > next.planned_vus);
        ends[k] = if falls_next { ends[k + 1] } else { k };
    }
    ends
}

/// A max segment tree over the planned counts, for "the first step at or after `from` whose
/// count is at least `n`" in O(log n).
struct MaxTree {
    leaves: usize,
    /// Node 1 is the root; node `i` has children `2i` and `2i + 1`; leaves start at `leaves`.
    nodes: Vec<u64>,
}

impl MaxTree {
    fn new(values: impl ExactSizeIterator<Item = u64>) -> MaxTree {
        let leaves = values.len().next_power_of_two();
        let mut nodes = vec![0u64; 2 * leaves];
        for (offset, value) in values.enumerate() {
            nodes[leaves + offset] = value;
        }
        for node in (1..leaves).rev() {
            nodes[node] = nodes[2 * node].max(nodes[2 * node + 1]);
        }
        MaxTree { leaves, nodes }
    }

    /// The first index in `from..to` whose value is at least `at_least`.
    fn first_at_least(&self, from: usize, to: usize, at_least: u64) -> Option<usize> {
        self.descend(1, 0..self.leaves, from..to, at_least)
    }

    fn descend(
        &self,
        node: usize,
        span: std::ops::Range<usize>,
        wanted: std::ops::Range<usize>,
        at_least: u64,
    ) -> Option<usize> {
        if span.end <= wanted.start || span.start >= wanted.end || self.nodes[node] < at_least {
            return None;
        }
        if span.len() == 1 {
            return Some(span.start);
        }
        let middle = span.start + span.len() / 2;
        self.descend(2 * node, span.start..middle, wanted.clone(), at_least)
            .or_else(|| self.descend(2 * node + 1, middle..span.end, wanted, at_least))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// k6's look-ahead as written in `reserveVUsForGracefulRampDowns`, quadratic: the oracle.
    fn k6_reference(raw: &[VuStep], grace: u64, executor_end: u64) -> Vec<VuStep> {
        let mut reserved: Vec<VuStep> = Vec::new();
        let mut last_planned = 0u64;
        let mut last_downward_slope = 0usize;
        let mut index = 0usize;
        while index < raw.len() {
            let step = raw[index];
            if index == 0 || step.planned_vus > last_planned {
                reserved.push(step);
                last_planned = step.planned_vus;
                index += 1;
                continue;
            }
            if step.planned_vus == last_planned {
                index += 1;
                continue;
            }
            let timeout = step.at_nanos().saturating_add(grace);
            let look_from = (index + 1).max(last_downward_slope);
            let mut back_up_at = None;
            let mut was_ramping_down = true;
            for ahead in look_from..raw.len() {
                let next = raw[ahead];
                if next.at_nanos() > timeout {
                    break;
                }
                if next.planned_vus >= last_planned {
                    back_up_at = Some(ahead);
                    break;
                }
                if was_ramping_down {
                    if raw[ahead - 1].planned_vus > next.planned_vus {
                        last_downward_slope = ahead;
                    } else {
                        was_ramping_down = false;
                    }
                }
            }
            if let Some(ahead) = back_up_at {
                index = ahead;
                continue;
            }
            if timeout >= executor_end {
                break;
            }
            reserved.push(VuStep::planned(timeout, step.planned_vus));
            last_planned = step.planned_vus;
            index += 1;
        }
        reserved
    }

    /// Steps in time order from (gap, count) pairs; small counts so that ramps come back up.
    fn steps(pairs: &[(u64, u64)]) -> Vec<VuStep> {
        let mut at = 0u64;
        pairs
            .iter()
            .map(|&(gap, count)| {
                at += gap;
                VuStep::planned(at, count)
            })
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]
        #[test]
        fn same_steps_as_k6s_look_ahead(
            pairs in proptest::collection::vec((0u64..5, 0u64..8), 0..60),
            grace in 1u64..12,
            end_slack in 0u64..40,
        ) {
            let raw = steps(&pairs);
            let end = raw.last().map_or(0, VuStep::at_nanos) + end_slack;
            prop_assert_eq!(
                reserve_for_graceful_ramp_down(&raw, grace, end),
                k6_reference(&raw, grace, end)
            );
        }
    }

    #[test]
    fn a_long_fall_then_a_partial_climb_is_not_quadratic() {
        // 10 000 → 1 000 over 30 s, then up to 3 000 over 10 s: 11 000 steps whose grace windows
        // all cover the climb. The oracle makes ~18 M comparisons here; the tree ~11 000 · log.
        let second = 1_000_000_000u64;
        let fall = (0..9_000u64).map(|k| VuStep::planned(k * 30 * second / 9_000, 10_000 - k - 1));
        let climb = (0..2_000u64)
            .map(|k| VuStep::planned(30 * second + k * 10 * second / 2_000, 1_000 + k + 1));
        let raw: Vec<VuStep> = fall.chain(climb).collect();
        let end = 80 * second;
        let reserved = reserve_for_graceful_ramp_down(&raw, 30 * second, end);
        assert_eq!(reserved, k6_reference(&raw, 30 * second, end));
        // Every VU removed on the way down is held for the full 30 s grace.
        assert_eq!(reserved[1].at.as_secs(), 30);
        assert_eq!(reserved[1].planned_vus, 9_998);
    }
}
