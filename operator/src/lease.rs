//! Leader election over a coordination.k8s.io/v1 Lease, so only one operator replica reconciles.
//!
//! It follows client-go's `leaderelection`: every `renew_every` the elector reads the Lease and
//! creates, renews or takes it over (an expired or released one) with a PUT carrying the
//! resourceVersion it read, so of two candidates racing for it the API server lets exactly one
//! win (the other gets 409 Conflict). [`decide`] is that choice as a pure function; [`spawn`]
//! runs the loop and reports through [`Leadership`]; [`release`] hands the Lease back on
//! shutdown so a successor need not wait for it to expire.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::Client;
use kube::api::{Api, PostParams};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// How long a Lease stays ours without renewal, unless configured otherwise (client-go's default).
pub const DEFAULT_LEASE_DURATION: Duration = Duration::from_secs(15);

/// How often the elector tries to acquire or renew, unless configured otherwise.
pub const DEFAULT_RENEW_EVERY: Duration = Duration::from_secs(5);

/// The shortest period the elector accepts: a zero one would hammer the API server.
const MIN_RENEW_EVERY: Duration = Duration::from_millis(10);

/// The longest Lease the API can express: `leaseDurationSeconds` is an int32.
const MAX_LEASE_DURATION: Duration = Duration::from_secs(i32::MAX as u64);

/// How often [`release`] re-reads the Lease when a write races it before giving up.
const RELEASE_ATTEMPTS: usize = 3;

/// Which Lease to elect on, who we are, and the timing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseConfig {
    /// Namespace of the Lease (usually the operator's own).
    pub namespace: String,
    /// Name of the Lease, the same for every replica.
    pub name: String,
    /// This replica's identity, unique among the candidates (e.g. the pod name).
    pub identity: String,
    /// How long the Lease stays ours after a renewal; others take it over only after that.
    /// Rounded up to whole seconds on the Lease; at least one second.
    pub lease_duration: Duration,
    /// How often to try to acquire or renew; at most half of `lease_duration`, so a leader
    /// gets a second chance to renew before its Lease runs out.
    pub renew_every: Duration,
}

impl LeaseConfig {
    /// A config for Lease `namespace/name` as `identity`, with the default timing
    /// ([`DEFAULT_LEASE_DURATION`], [`DEFAULT_RENEW_EVERY`]).
    pub fn new(
        namespace: impl Into<String>,
        name: impl Into<String>,
        identity: impl Into<String>,
    ) -> LeaseConfig {
        LeaseConfig {
            namespace: namespace.into(),
            name: name.into(),
            identity: identity.into(),
            lease_duration: DEFAULT_LEASE_DURATION,
            renew_every: DEFAULT_RENEW_EVERY,
        }
    }

    /// The config with its timing brought into the range the loop relies on (see the fields).
    fn normalized(mut self) -> LeaseConfig {
        // `max` then `min` rather than `clamp`, which panics when the bounds cross.
        self.lease_duration = self
            .lease_duration
            .max(Duration::from_secs(1))
            .min(MAX_LEASE_DURATION);
        self.renew_every = self
            .renew_every
            .max(MIN_RENEW_EVERY)
            .min(self.lease_duration / 2);
        self
    }
}

/// A failed Lease request.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    /// The API server refused the request or could not be reached.
    #[error("Lease {namespace}/{name}: {source}")]
    Api {
        /// Namespace of the Lease.
        namespace: String,
        /// Name of the Lease.
        name: String,
        /// What the client reported.
        #[source]
        source: kube::Error,
    },
}

impl LeaseError {
    fn api(config: &LeaseConfig, source: kube::Error) -> LeaseError {
        LeaseError::Api {
            namespace: config.namespace.clone(),
            name: config.name.clone(),
            source,
        }
    }
}

/// What the elector last knew, as published to [`Leadership`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct State {
    leader: bool,
    /// Counts the times leadership was gained, so a loss followed quickly by a regain is still
    /// seen as a loss by whoever held the earlier term.
    term: u64,
}

/// Whether this process leads, as kept up to date by the elector [`spawn`] started.
///
/// Dropping it stops the elector: nobody would be left to act on its answers, and a leader
/// that keeps renewing without acting would block the other replicas.
#[derive(Debug)]
pub struct Leadership {
    state: watch::Receiver<State>,
    /// The term [`Leadership::acquired`] last saw, which [`Leadership::lost`] waits to end.
    term: Option<u64>,
    task: Option<JoinHandle<()>>,
}

impl Leadership {
    /// Whether this process is the leader right now.
    pub fn is_leader(&self) -> bool {
        self.state.borrow().leader
    }

    /// Resolves once this process is the leader (at once if it already is).
    pub async fn acquired(&mut self) {
        let term = self.acquired_term().await;
        self.term = Some(term);
    }

    /// Resolves when the leadership [`Leadership::acquired`] saw is lost, also when it was lost
    /// and regained in between. Without an earlier `acquired`, first waits to lead.
    pub async fn lost(&mut self) {
        let term = match self.term {
            Some(term) => term,
            None => self.acquired_term().await,
        };
        // An error means the elector has ended, which ends leadership as well.
        if let Ok(state) = self.state.wait_for(|s| !s.leader || s.term != term).await {
            tracing::debug!(term = state.term, "leadership lost");
        }
        self.term = None;
    }

    /// Stops the elector and waits until it has ended, so that a following [`release`] cannot
    /// be undone by a renewal of its own.
    pub async fn stop(mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            if let Err(error) = task.await
                && error.is_panic()
            {
                tracing::error!(%error, "the leader elector panicked");
            }
        }
    }

    async fn acquired_term(&mut self) -> u64 {
        match self.state.wait_for(|s| s.leader).await {
            Ok(state) => state.term,
            // The elector has ended (it only does so by panicking while we hold this), so
            // leadership can never come: wait as a follower would, forever.
            Err(_) => std::future::pending().await,
        }
    }
}

impl Drop for Leadership {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// The elector's side of the channel. Dropping it (the task ended or was aborted) reports
/// "not leader", so nobody goes on acting on a leadership that nobody renews.
#[derive(Debug)]
struct Reporter {
    state: watch::Sender<State>,
}

impl Reporter {
    fn set(&self, leader: bool) {
        // `send_if_modified` works with no receiver left and wakes them only on a change.
        self.state.send_if_modified(|state| {
            if state.leader == leader {
                return false;
            }
            state.leader = leader;
            if leader {
                state.term = state.term.wrapping_add(1);
            }
            true
        });
    }
}

impl Drop for Reporter {
    fn drop(&mut self) {
        self.set(false);
    }
}

/// Starts electing on the Lease `config` names in a background task, forever (until the
/// returned [`Leadership`] is stopped or dropped). Must be called within a tokio runtime.
pub fn spawn(client: Client, config: LeaseConfig) -> Leadership {
    let (sender, receiver) = watch::channel(State::default());
    let reporter = Reporter { state: sender };
    let task = tokio::spawn(elect(client, config.normalized(), reporter));
    Leadership {
        state: receiver,
        term: None,
        task: Some(task),
    }
}

/// The election loop: one attempt every `renew_every`, stepping down as soon as the last
/// successful write may have expired in the other candidates' eyes.
async fn elect(client: Client, config: LeaseConfig, reporter: Reporter) {
    let api: Api<Lease> = Api::namespaced(client, &config.namespace);
    // Until when our last successful write keeps the Lease ours. Measured from before the
    // attempt, which is no later than the renewTime written, so we step down no later than
    // anyone may take over.
    let mut held_until: Option<Instant> = None;
    loop {
        let started = Instant::now();
        let next = later(started, config.renew_every);
        // A hanging request must not keep us leading past our Lease.
        let deadline = held_until.map_or(next, |until| until.min(next));
        let attempt = tokio::time::timeout_at(deadline, try_acquire_or_renew(&api, &config));
        match attempt.await {
            Ok(Ok(true)) => {
                held_until = Some(later(started, config.lease_duration));
                if !reporter.state.borrow().leader {
                    let (lease, identity) = (&config.name, &config.identity);
                    tracing::info!(%lease, %identity, "became leader");
                }
                reporter.set(true);
            }
            Ok(Ok(false)) => {
                if held_until.take().is_some() {
                    let lease = &config.name;
                    tracing::warn!(%lease, "leadership lost: another candidate holds the Lease");
                }
                reporter.set(false);
            }
            Ok(Err(error)) => {
                tracing::warn!(%error, "could not acquire or renew the leader Lease");
            }
            Err(_) => {
                let lease = &config.name;
                tracing::warn!(%lease, "acquiring or renewing the leader Lease timed out");
            }
        }
        if let Some(until) = held_until
            && until <= next
        {
            // The Lease runs out before the next attempt: stop leading when it does, not at the
            // next attempt, so that two leaders never overlap.
            tokio::time::sleep_until(until).await;
            held_until = None;
            let lease = &config.name;
            tracing::warn!(%lease, "leadership lost: the Lease could not be renewed in time");
            reporter.set(false);
        }
        tokio::time::sleep_until(next).await;
    }
}

/// `start + duration` without the panic of `+` on overflow, which the normalized config (at
/// most ~68 years) keeps out of reach anyway; should it happen, `start` errs on the safe side
/// (step down, retry at once).
fn later(start: Instant, duration: Duration) -> Instant {
    start.checked_add(duration).unwrap_or(start)
}

/// One round: read the Lease, decide, write. `Ok(true)` when we hold it afterwards.
async fn try_acquire_or_renew(api: &Api<Lease>, config: &LeaseConfig) -> Result<bool, LeaseError> {
    let current = api
        .get_opt(&config.name)
        .await
        .map_err(|error| LeaseError::api(config, error))?;
    let decision = decide(
        current.as_ref(),
        &config.identity,
        Timestamp::now(),
        config.lease_duration,
    );
    let written = match decision {
        Decision::Follow => return Ok(false),
        Decision::Create(lease) => {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(config.name.clone()),
                    namespace: Some(config.namespace.clone()),
                    ..ObjectMeta::default()
                },
                ..lease
            };
            api.create(&PostParams::default(), &lease).await
        }
        Decision::Renew(lease) | Decision::TakeOver(lease) => {
            api.replace(&config.name, &PostParams::default(), &lease)
                .await
        }
    };
    match written {
        Ok(_) => Ok(true),
        // AlreadyExists on create, or the resourceVersion we read is stale: another candidate
        // wrote first, so it won this round.
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
        Err(error) => Err(LeaseError::api(config, error)),
    }
}

/// What one election round does with the Lease it read.
#[derive(Debug, Clone, PartialEq)]
enum Decision {
    /// There is no Lease: create this one, held by us.
    Create(Lease),
    /// We hold the Lease: write this renewal.
    Renew(Lease),
    /// The Lease is free or expired: write this, which makes it ours.
    TakeOver(Lease),
    /// Another candidate holds a live Lease: wait.
    Follow,
}

/// Decides a round for candidate `identity` at `now`, given the Lease as read (`None`: absent)
/// and our `duration`. The returned Lease keeps the read one's metadata (resourceVersion
/// included), so writing it fails if anyone wrote in between.
fn decide(lease: Option<&Lease>, identity: &str, now: Timestamp, duration: Duration) -> Decision {
    let now_micro = MicroTime(now);
    let seconds = Some(whole_seconds(duration));
    let Some(lease) = lease else {
        return Decision::Create(Lease {
            metadata: ObjectMeta::default(),
            spec: Some(LeaseSpec {
                holder_identity: Some(identity.to_owned()),
                lease_duration_seconds: seconds,
                acquire_time: Some(now_micro.clone()),
                renew_time: Some(now_micro),
                lease_transitions: Some(0),
                ..LeaseSpec::default()
            }),
        });
    };
    let spec = lease.spec.clone().unwrap_or_default();
    let holder = spec.holder_identity.as_deref().unwrap_or_default();
    if holder == identity {
        let renewed = LeaseSpec {
            lease_duration_seconds: seconds,
            acquire_time: spec.acquire_time.clone().or(Some(now_micro.clone())),
            renew_time: Some(now_micro),
            lease_transitions: spec.lease_transitions.or(Some(0)),
            ..spec
        };
        return Decision::Renew(Lease {
            spec: Some(renewed),
            ..lease.clone()
        });
    }
    if !holder.is_empty() && !expired(&spec, now, duration) {
        return Decision::Follow;
    }
    let taken = LeaseSpec {
        holder_identity: Some(identity.to_owned()),
        lease_duration_seconds: seconds,
        acquire_time: Some(now_micro.clone()),
        renew_time: Some(now_micro),
        lease_transitions: Some(spec.lease_transitions.unwrap_or(0).saturating_add(1)),
        ..spec
    };
    Decision::TakeOver(Lease {
        spec: Some(taken),
        ..lease.clone()
    })
}

/// Whether the holder's claim has run out at `now`: its renewTime plus the duration it
/// announced (ours if it announced none) has passed. No renewTime is no claim.
fn expired(spec: &LeaseSpec, now: Timestamp, duration: Duration) -> bool {
    let Some(MicroTime(renewed)) = &spec.renew_time else {
        return true;
    };
    let seconds = spec
        .lease_duration_seconds
        .filter(|seconds| *seconds > 0)
        .unwrap_or_else(|| whole_seconds(duration));
    match renewed.checked_add(SignedDuration::from_secs(i64::from(seconds))) {
        Ok(until) => until <= now,
        // Past the end of the calendar: it never runs out.
        Err(_) => false,
    }
}

/// `duration` as the Lease's whole seconds, rounded up so others never wait less than we hold.
fn whole_seconds(duration: Duration) -> i32 {
    let seconds = duration
        .as_secs()
        .saturating_add(u64::from(duration.subsec_nanos() > 0))
        .max(1);
    i32::try_from(seconds).unwrap_or(i32::MAX)
}

/// Hands the Lease back if `config.identity` holds it: clears holderIdentity (and shortens the
/// announced duration to a second), so a successor takes over at its next attempt instead of
/// waiting for the Lease to expire. Best effort for shutdown: stop the elector first
/// ([`Leadership::stop`]), or its next round takes the Lease right back.
/// Returns whether the Lease was released (`false`: absent, or held by someone else).
pub async fn release(client: Client, config: &LeaseConfig) -> Result<bool, LeaseError> {
    let api: Api<Lease> = Api::namespaced(client, &config.namespace);
    for _ in 0..RELEASE_ATTEMPTS {
        let current = api
            .get_opt(&config.name)
            .await
            .map_err(|error| LeaseError::api(config, error))?;
        let Some(lease) = current
            .as_ref()
            .and_then(|lease| released(lease, &config.identity, Timestamp::now()))
        else {
            return Ok(false);
        };
        match api
            .replace(&config.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => return Ok(true),
            // Written in between (by a renewal in flight, say): read again and re-check.
            Err(kube::Error::Api(status)) if status.code == 409 => continue,
            Err(error) => return Err(LeaseError::api(config, error)),
        }
    }
    Ok(false)
}

/// The released form of `lease` if `identity` holds it, as client-go writes it.
fn released(lease: &Lease, identity: &str, now: Timestamp) -> Option<Lease> {
    let spec = lease.spec.clone()?;
    if spec.holder_identity.as_deref() != Some(identity) {
        return None;
    }
    Some(Lease {
        spec: Some(LeaseSpec {
            holder_identity: None,
            lease_duration_seconds: Some(1),
            acquire_time: Some(MicroTime(now)),
            renew_time: Some(MicroTime(now)),
            ..spec
        }),
        ..lease.clone()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DURATION: Duration = Duration::from_secs(15);

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + seconds).expect("a valid timestamp")
    }

    fn held(holder: Option<&str>, renewed: Timestamp, transitions: i32) -> Lease {
        Lease {
            metadata: ObjectMeta {
                name: Some("stampede-operator".into()),
                namespace: Some("stampede".into()),
                resource_version: Some("42".into()),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: holder.map(str::to_owned),
                lease_duration_seconds: Some(15),
                acquire_time: Some(MicroTime(at(-100))),
                renew_time: Some(MicroTime(renewed)),
                lease_transitions: Some(transitions),
                ..LeaseSpec::default()
            }),
        }
    }

    fn spec_of(decision: Decision) -> (&'static str, Lease) {
        match decision {
            Decision::Create(lease) => ("create", lease),
            Decision::Renew(lease) => ("renew", lease),
            Decision::TakeOver(lease) => ("take over", lease),
            Decision::Follow => ("follow", Lease::default()),
        }
    }

    #[test]
    fn absent_lease_is_created_held_by_us() {
        let (kind, lease) = spec_of(decide(None, "a", at(0), DURATION));
        assert_eq!(kind, "create");
        let spec = lease.spec.expect("a spec");
        assert_eq!(spec.holder_identity.as_deref(), Some("a"));
        assert_eq!(spec.lease_duration_seconds, Some(15));
        assert_eq!(spec.acquire_time, Some(MicroTime(at(0))));
        assert_eq!(spec.renew_time, Some(MicroTime(at(0))));
        assert_eq!(spec.lease_transitions, Some(0));
    }

    #[test]
    fn our_lease_is_renewed_keeping_acquire_time_and_transitions() {
        let current = held(Some("a"), at(-5), 3);
        let (kind, lease) = spec_of(decide(Some(&current), "a", at(0), DURATION));
        assert_eq!(kind, "renew");
        assert_eq!(lease.metadata.resource_version.as_deref(), Some("42"));
        let spec = lease.spec.expect("a spec");
        assert_eq!(spec.holder_identity.as_deref(), Some("a"));
        assert_eq!(spec.acquire_time, Some(MicroTime(at(-100))));
        assert_eq!(spec.renew_time, Some(MicroTime(at(0))));
        assert_eq!(spec.lease_transitions, Some(3));
    }

    #[test]
    fn our_lease_is_renewed_even_when_expired() {
        let current = held(Some("a"), at(-60), 3);
        let (kind, _) = spec_of(decide(Some(&current), "a", at(0), DURATION));
        assert_eq!(kind, "renew");
    }

    #[test]
    fn anothers_fresh_lease_is_followed() {
        let current = held(Some("b"), at(-14), 3);
        assert_eq!(
            decide(Some(&current), "a", at(0), DURATION),
            Decision::Follow
        );
    }

    #[test]
    fn anothers_expired_lease_is_taken_over() {
        let current = held(Some("b"), at(-15), 3);
        let (kind, lease) = spec_of(decide(Some(&current), "a", at(0), DURATION));
        assert_eq!(kind, "take over");
        assert_eq!(lease.metadata.resource_version.as_deref(), Some("42"));
        let spec = lease.spec.expect("a spec");
        assert_eq!(spec.holder_identity.as_deref(), Some("a"));
        assert_eq!(spec.acquire_time, Some(MicroTime(at(0))));
        assert_eq!(spec.renew_time, Some(MicroTime(at(0))));
        assert_eq!(spec.lease_transitions, Some(4));
    }

    #[test]
    fn empty_or_missing_holder_is_taken_over_at_once() {
        for holder in [Some(""), None] {
            let current = held(holder, at(0), 3);
            let (kind, lease) = spec_of(decide(Some(&current), "a", at(0), DURATION));
            assert_eq!(kind, "take over", "holder {holder:?}");
            let spec = lease.spec.expect("a spec");
            assert_eq!(spec.holder_identity.as_deref(), Some("a"));
            assert_eq!(spec.lease_transitions, Some(4));
        }
    }

    #[test]
    fn holder_without_renew_time_has_no_claim() {
        let mut current = held(Some("b"), at(0), 0);
        if let Some(spec) = current.spec.as_mut() {
            spec.renew_time = None;
        }
        let (kind, _) = spec_of(decide(Some(&current), "a", at(0), DURATION));
        assert_eq!(kind, "take over");
    }

    #[test]
    fn expiry_follows_the_duration_the_holder_announced() {
        // The holder promised to renew within 60s, longer than our 15s: it is still live.
        let mut current = held(Some("b"), at(-30), 0);
        if let Some(spec) = current.spec.as_mut() {
            spec.lease_duration_seconds = Some(60);
        }
        assert_eq!(
            decide(Some(&current), "a", at(0), DURATION),
            Decision::Follow
        );
        // Without an announcement ours applies.
        if let Some(spec) = current.spec.as_mut() {
            spec.lease_duration_seconds = None;
        }
        let (kind, _) = spec_of(decide(Some(&current), "a", at(0), DURATION));
        assert_eq!(kind, "take over");
    }

    #[test]
    fn lease_duration_is_rounded_up_to_whole_seconds() {
        assert_eq!(whole_seconds(Duration::from_millis(1500)), 2);
        assert_eq!(whole_seconds(Duration::from_secs(15)), 15);
        assert_eq!(whole_seconds(Duration::ZERO), 1);
        assert_eq!(whole_seconds(Duration::MAX), i32::MAX);
    }

    #[test]
    fn config_timing_is_normalized() {
        let mut config = LeaseConfig::new("ns", "lease", "a");
        assert_eq!(config.clone().normalized(), config);
        config.lease_duration = Duration::ZERO;
        config.renew_every = Duration::ZERO;
        let normalized = config.normalized();
        assert_eq!(normalized.lease_duration, Duration::from_secs(1));
        assert_eq!(normalized.renew_every, MIN_RENEW_EVERY);
        let mut config = LeaseConfig::new("ns", "lease", "a");
        config.renew_every = Duration::from_secs(60);
        assert_eq!(config.normalized().renew_every, Duration::from_millis(7500));
    }

    #[test]
    fn release_clears_our_holder_only() {
        let ours = held(Some("a"), at(-5), 3);
        let lease = released(&ours, "a", at(0)).expect("released");
        assert_eq!(lease.metadata.resource_version.as_deref(), Some("42"));
        let spec = lease.spec.expect("a spec");
        assert_eq!(spec.holder_identity, None);
        assert_eq!(spec.lease_duration_seconds, Some(1));
        assert_eq!(spec.lease_transitions, Some(3));
        // A released Lease is taken over at once, counting a transition.
        let (kind, _) = spec_of(decide(
            Some(&Lease {
                spec: Some(spec),
                ..ours
            }),
            "b",
            at(0),
            DURATION,
        ));
        assert_eq!(kind, "take over");
        assert_eq!(released(&held(Some("b"), at(-5), 3), "a", at(0)), None);
    }

    fn leadership() -> (Reporter, Leadership) {
        let (sender, receiver) = watch::channel(State::default());
        let leadership = Leadership {
            state: receiver,
            term: None,
            task: None,
        };
        (Reporter { state: sender }, leadership)
    }

    /// Awaits `future`, failing the test if it has not resolved within a generous bound.
    async fn within<F: std::future::Future>(future: F) -> F::Output {
        tokio::time::timeout(Duration::from_secs(5), future)
            .await
            .expect("resolved in time")
    }

    /// Whether `future` is still pending after everything else runnable has run.
    async fn pending<F: std::future::Future>(future: F) -> bool {
        tokio::select! {
            biased;
            _ = future => false,
            _ = tokio::task::yield_now() => true,
        }
    }

    #[tokio::test]
    async fn acquired_and_lost_follow_the_elector() {
        let (reporter, mut leadership) = leadership();
        assert!(!leadership.is_leader());
        assert!(pending(leadership.acquired()).await);
        reporter.set(true);
        within(leadership.acquired()).await;
        assert!(leadership.is_leader());
        assert!(pending(leadership.lost()).await);
        reporter.set(false);
        within(leadership.lost()).await;
        assert!(!leadership.is_leader());
    }

    #[tokio::test]
    async fn lost_sees_a_loss_that_was_regained_in_between() {
        let (reporter, mut leadership) = leadership();
        reporter.set(true);
        within(leadership.acquired()).await;
        reporter.set(false);
        reporter.set(true);
        assert!(leadership.is_leader());
        within(leadership.lost()).await;
    }

    #[tokio::test]
    async fn an_ended_elector_is_a_lost_leadership() {
        let (reporter, mut leadership) = leadership();
        reporter.set(true);
        within(leadership.acquired()).await;
        drop(reporter);
        assert!(!leadership.is_leader());
        within(leadership.lost()).await;
        assert!(pending(leadership.acquired()).await);
    }
}
