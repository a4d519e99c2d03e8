//! Where load may go: allowed and denied targets — hosts, domains (`*.example.com`) and
//! address ranges (`10.0.0.0/8`, `169.254.169.254`) — checked on every new connection: the
//! host before it is resolved (k6 `blockHostnames`, error_code 1111) and the address it
//! resolves to (k6 `blacklistIPs`, 1110). Templates and redirects cannot get around it: they
//! all end in a connection. A denied target wins over an allowed one.

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;

use super::error::ErrorKind;

/// One entry of a target list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetRule {
    /// An address range (a bare address is its own /32 or /128).
    Range(IpNet),
    /// A host name, or with a leading `*` every name ending in the rest (`*.svc` matches
    /// `api.shop.svc`), compared without regard to case.
    Host {
        /// The name (lowercase) or suffix.
        name: String,
        /// Whether it is a suffix (`*...`).
        suffix: bool,
    },
}

/// Why a target list entry is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{entry:?} is not a target: write a host (shop.example.com), a domain (*.example.com), an address (10.1.2.3) or a range (10.0.0.0/8)"
)]
pub struct TargetRuleError {
    /// The entry as written.
    pub entry: String,
}

impl TargetRule {
    /// Parses one entry.
    pub fn parse(text: &str) -> Result<TargetRule, TargetRuleError> {
        let entry = text.trim();
        let error = || TargetRuleError {
            entry: text.to_string(),
        };
        if entry.contains('/') {
            return entry
                .parse::<IpNet>()
                .map(TargetRule::Range)
                .map_err(|_| error());
        }
        if let Ok(ip) = entry
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
        {
            return Ok(TargetRule::Range(IpNet::from(ip)));
        }
        let (name, suffix) = match entry.strip_prefix('*') {
            Some(rest) => (rest, true),
            None => (entry, false),
        };
        let valid = !name.is_empty()
            && !name.contains('*')
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
        if !valid {
            return Err(error());
        }
        Ok(TargetRule::Host {
            name: name.to_ascii_lowercase(),
            suffix,
        })
    }

    fn matches_host(&self, host: &str) -> bool {
        match self {
            TargetRule::Host { name, suffix: true } => {
                host.len().checked_sub(name.len()).is_some_and(|start| {
                    host.is_char_boundary(start) && host[start..].eq_ignore_ascii_case(name)
                })
            }
            TargetRule::Host {
                name,
                suffix: false,
            } => host.eq_ignore_ascii_case(name),
            TargetRule::Range(_) => false,
        }
    }

    fn contains(&self, ip: IpAddr) -> bool {
        match self {
            TargetRule::Range(range) => range.contains(&canonical(ip)),
            TargetRule::Host { .. } => false,
        }
    }
}

/// `::ffff:a.b.c.d` is `a.b.c.d`: a mapped address must not slip past an IPv4 range.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

impl fmt::Display for TargetRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TargetRule::Range(range) => write!(f, "{range}"),
            TargetRule::Host { name, suffix } => {
                write!(f, "{}{name}", if *suffix { "*" } else { "" })
            }
        }
    }
}

/// Parses a comma-separated list of entries (empty entries skipped).
pub fn parse_list(text: &str) -> Result<Vec<TargetRule>, TargetRuleError> {
    text.split(',')
        .filter(|entry| !entry.trim().is_empty())
        .map(TargetRule::parse)
        .collect()
}

/// The allowed and denied targets of a run; the default allows everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetPolicy {
    /// When not empty, only these (by host or by address) may be loaded.
    pub allowed: Vec<TargetRule>,
    /// Never loaded.
    pub denied: Vec<TargetRule>,
}

impl TargetPolicy {
    /// Whether nothing is restricted (the checks are skipped).
    pub fn is_open(&self) -> bool {
        self.allowed.is_empty() && self.denied.is_empty()
    }

    /// Before resolving: the host must not match a denied host pattern.
    pub fn check_host(&self, host: &str) -> Result<(), ErrorKind> {
        match self.denied.iter().find(|rule| rule.matches_host(host)) {
            Some(rule) => Err(ErrorKind::BlockedHostname {
                host: host.to_string(),
                pattern: rule.to_string(),
            }),
            None => Ok(()),
        }
    }

    /// After resolving: the address must not be in a denied range and, when allowed targets
    /// are set, the host or the address must be one of them.
    pub fn check_address(&self, host: &str, ip: IpAddr) -> Result<(), ErrorKind> {
        if let Some(rule) = self.denied.iter().find(|rule| rule.contains(ip)) {
            return Err(ErrorKind::BlacklistedIp {
                ip,
                range: rule.to_string(),
            });
        }
        let allowed = self.allowed.is_empty()
            || self
                .allowed
                .iter()
                .any(|rule| rule.matches_host(host) || rule.contains(ip));
        if allowed {
            Ok(())
        } else {
            Err(ErrorKind::NotAllowedTarget {
                host: host.to_string(),
                ip: Some(ip),
            })
        }
    }

    /// Both checks, for a target known before any connection (a literal URL at validation);
    /// `ip` is the host's address when the host is one.
    pub fn check(&self, host: &str, ip: Option<IpAddr>) -> Result<(), ErrorKind> {
        self.check_host(host)?;
        match ip {
            Some(ip) => self.check_address(host, ip),
            // A name not yet resolved: only an allowed list of hosts can refuse it now.
            None if !self.allowed.is_empty()
                && self
                    .allowed
                    .iter()
                    .all(|rule| matches!(rule, TargetRule::Host { .. }))
                && !self.allowed.iter().any(|rule| rule.matches_host(host)) =>
            {
                Err(ErrorKind::NotAllowedTarget {
                    host: host.to_string(),
                    ip: None,
                })
            }
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(allowed: &str, denied: &str) -> TargetPolicy {
        TargetPolicy {
            allowed: parse_list(allowed).unwrap(),
            denied: parse_list(denied).unwrap(),
        }
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn entries_parse_as_ranges_addresses_hosts_and_domains() {
        assert_eq!(
            parse_list(" 10.0.0.0/8, 169.254.169.254,[::1], *.Svc.cluster.local ,api,,").unwrap(),
            [
                TargetRule::Range("10.0.0.0/8".parse().unwrap()),
                TargetRule::Range("169.254.169.254/32".parse().unwrap()),
                TargetRule::Range("::1/128".parse().unwrap()),
                TargetRule::Host {
                    name: ".svc.cluster.local".into(),
                    suffix: true
                },
                TargetRule::Host {
                    name: "api".into(),
                    suffix: false
                },
            ]
        );
        for bad in ["10.0.0.0/33", "a*b", "*", "http://x/", "x y"] {
            assert_eq!(
                TargetRule::parse(bad).unwrap_err().entry,
                bad,
                "{bad} is refused"
            );
        }
    }

    #[test]
    fn denied_hosts_and_ranges_give_k6s_codes_and_messages() {
        let policy = policy(
            "",
            "169.254.0.0/16,metadata.google.internal,*.kube-system.svc",
        );
        let blocked = policy.check_host("Metadata.Google.Internal").unwrap_err();
        assert_eq!(blocked.error_code(), 1111);
        assert_eq!(
            blocked.to_string(),
            "hostname (Metadata.Google.Internal) is in a blocked pattern (metadata.google.internal)"
        );
        assert_eq!(
            policy
                .check_host("dns.kube-system.svc")
                .unwrap_err()
                .error_code(),
            1111
        );
        assert!(policy.check_host("kube-system.svc.evil").is_ok());
        let blacklisted = policy
            .check_address("x", ip("169.254.169.254"))
            .unwrap_err();
        assert_eq!(blacklisted.error_code(), 1110);
        assert_eq!(
            blacklisted.to_string(),
            "IP (169.254.169.254) is in a blacklisted range (169.254.0.0/16)"
        );
        // An IPv4-mapped IPv6 address is the IPv4 address.
        assert!(
            policy
                .check_address("x", ip("::ffff:169.254.169.254"))
                .is_err()
        );
        assert!(policy.check_address("shop", ip("127.0.0.1")).is_ok());
    }

    #[test]
    fn allowed_targets_admit_by_host_or_address_and_denied_wins() {
        let policy = policy("*.shop.svc,127.0.0.0/8", "127.0.0.9");
        assert!(policy.check_address("api.shop.svc", ip("10.1.2.3")).is_ok());
        assert!(policy.check_address("localhost", ip("127.0.0.1")).is_ok());
        let refused = policy
            .check_address("evil.test", ip("10.1.2.3"))
            .unwrap_err();
        assert_eq!(refused.error_code(), 1110);
        assert_eq!(
            refused.to_string(),
            "evil.test (10.1.2.3) is not an allowed target"
        );
        assert!(
            policy
                .check_address("api.shop.svc", ip("127.0.0.9"))
                .is_err()
        );
        assert!(TargetPolicy::default().is_open());
    }

    #[test]
    fn a_literal_target_is_checked_as_far_as_it_can_be_before_resolving() {
        let hosts_only = policy("*.shop.svc", "169.254.169.254");
        assert!(hosts_only.check("api.shop.svc", None).is_ok());
        assert_eq!(
            hosts_only.check("evil.test", None).unwrap_err().to_string(),
            "evil.test is not an allowed target"
        );
        assert!(
            hosts_only
                .check("169.254.169.254", Some(ip("169.254.169.254")))
                .is_err()
        );
        // With an address range allowed, a name might resolve into it: not refused yet.
        let with_range = policy("10.0.0.0/8", "");
        assert!(with_range.check("anything.test", None).is_ok());
    }
}
