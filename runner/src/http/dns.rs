//! The shared DNS cache: each host is resolved once for the whole run, by one VU.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use tokio::sync::OnceCell;

use super::error::ErrorKind;

/// How long a failed lookup is remembered before the next request tries again.
const NEGATIVE_TTL: Duration = Duration::from_secs(1);

/// Resolves host names once (with `tokio::net::lookup_host`) and keeps the answers for the run.
///
/// Shared by all VUs (`Arc<DnsCache>`). Concurrent first lookups of one host wait for a
/// single resolution. Failures are kept for one second. Names under `.invalid` fail at
/// once without a query (RFC 6761), and [`DnsCache::with_override`] pins answers for tests.
#[derive(Default)]
pub struct DnsCache {
    overrides: HashMap<Box<str>, Arc<[IpAddr]>>,
    entries: RwLock<HashMap<Box<str>, Arc<Slot>>>,
}

#[derive(Default)]
struct Slot {
    answer: OnceCell<Answer>,
}

#[derive(Clone)]
enum Answer {
    Found(Arc<[IpAddr]>),
    Failed(ErrorKind, Instant),
}

impl fmt::Debug for DnsCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cached = self
            .entries
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len();
        f.debug_struct("DnsCache")
            .field("overrides", &self.overrides)
            .field("cached", &cached)
            .finish()
    }
}

impl DnsCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// Answers `host` with `addrs` without asking the resolver (an empty list means
    /// "no such host"). Matching ignores ASCII case.
    pub fn with_override(
        mut self,
        host: impl AsRef<str>,
        addrs: impl IntoIterator<Item = IpAddr>,
    ) -> Self {
        self.overrides.insert(
            host.as_ref().to_ascii_lowercase().into(),
            addrs.into_iter().collect(),
        );
        self
    }

    /// The addresses of `host` (IPv4 first, then IPv6), resolving it on first use.
    pub async fn resolve(&self, host: &str) -> Result<Arc<[IpAddr]>, ErrorKind> {
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(Arc::from([ip]));
        }
        let key = host.to_ascii_lowercase();
        if let Some(addrs) = self.overrides.get(key.as_str()) {
            return found_or_no_such_host(addrs.clone(), host);
        }
        if key == "invalid" || key.ends_with(".invalid") || key.ends_with(".invalid.") {
            return Err(no_such_host(host));
        }
        let slot = self.slot(&key);
        let answer = slot
            .answer
            .get_or_init(|| lookup(host.to_owned()))
            .await
            .clone();
        match answer {
            Answer::Found(addrs) => Ok(addrs),
            Answer::Failed(kind, at) => {
                if at.elapsed() >= NEGATIVE_TTL {
                    self.forget(&key, &slot);
                }
                Err(kind)
            }
        }
    }

    fn slot(&self, key: &str) -> Arc<Slot> {
        if let Some(slot) = self
            .entries
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
        {
            return slot.clone();
        }
        self.entries
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(key.into())
            .or_default()
            .clone()
    }

    /// Drops a failed answer so that the next request resolves again.
    fn forget(&self, key: &str, slot: &Arc<Slot>) {
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        if entries
            .get(key)
            .is_some_and(|current| Arc::ptr_eq(current, slot))
        {
            entries.remove(key);
        }
    }
}

fn no_such_host(host: &str) -> ErrorKind {
    ErrorKind::NoSuchHost {
        host: host.to_owned(),
    }
}

fn found_or_no_such_host(addrs: Arc<[IpAddr]>, host: &str) -> Result<Arc<[IpAddr]>, ErrorKind> {
    if addrs.is_empty() {
        Err(no_such_host(host))
    } else {
        Ok(addrs)
    }
}

async fn lookup(host: String) -> Answer {
    let result = tokio::net::lookup_host((host.as_str(), 0)).await;
    match result {
        Ok(addrs) => {
            let mut ips: Vec<IpAddr> = Vec::new();
            for addr in addrs {
                if !ips.contains(&addr.ip()) {
                    ips.push(addr.ip());
                }
            }
            // k6's default policy is preferIPv4.
            ips.sort_by_key(|ip| ip.is_ipv6());
            if ips.is_empty() {
                Answer::Failed(no_such_host(&host), Instant::now())
            } else {
                Answer::Found(ips.into())
            }
        }
        Err(err) => {
            let message = err.to_string();
            // getaddrinfo's EAI_NONAME / EAI_NODATA texts (glibc, musl, BSD).
            let lower = message.to_ascii_lowercase();
            let kind = if lower.contains("not known")
                || lower.contains("no address associated")
                || lower.contains("nodename nor servname")
                || lower.contains("not found")
            {
                no_such_host(&host)
            } else {
                ErrorKind::Dns {
                    host: host.clone(),
                    message,
                }
            };
            Answer::Failed(kind, Instant::now())
        }
    }
}

/// Picks the address to dial: a random IPv4 address if there is one, else a random IPv6 one
/// (k6's defaults `select=random`, `policy=preferIPv4`).
pub(crate) fn pick(addrs: &[IpAddr]) -> Option<IpAddr> {
    let v4 = addrs.iter().take_while(|ip| ip.is_ipv4()).count();
    let pool = if v4 > 0 { &addrs[..v4] } else { addrs };
    match pool.len() {
        0 => None,
        1 => Some(pool[0]),
        n => Some(pool[fastrand::usize(..n)]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn literals_overrides_and_invalid() {
        let cache = DnsCache::new()
            .with_override("Api.Test", ["127.0.0.1".parse().unwrap()])
            .with_override("gone.test", []);
        let ip = cache.resolve("::1").await.unwrap();
        assert_eq!(&*ip, &["::1".parse::<IpAddr>().unwrap()]);
        let api = cache.resolve("api.test").await.unwrap();
        assert_eq!(&*api, &["127.0.0.1".parse::<IpAddr>().unwrap()]);
        assert_eq!(
            cache.resolve("gone.test").await.unwrap_err().error_code(),
            1101
        );
        let err = cache.resolve("nothing.invalid").await.unwrap_err();
        assert_eq!(err.error_code(), 1101);
        assert_eq!(err.to_string(), "lookup nothing.invalid: no such host");
    }

    #[test]
    fn picks_ipv4_first() {
        let addrs: Vec<IpAddr> = vec!["10.0.0.1".parse().unwrap(), "::1".parse().unwrap()];
        assert_eq!(pick(&addrs), Some(addrs[0]));
        assert_eq!(pick(&addrs[1..]), Some(addrs[1]));
        assert_eq!(pick(&[]), None);
    }
}
