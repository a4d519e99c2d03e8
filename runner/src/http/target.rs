//! Request targets: absolute `http`/`https` URLs split once into what the client needs.
//!
//! Parsing and reference resolution are the `url` crate's (the WHATWG URL Standard that
//! browsers follow, which includes RFC 3986 §5 resolution); a [`Target`] keeps the parsed
//! [`Url`] and the `Host` header derived from it.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use http::HeaderValue;
use url::{Host, Position, Url};

use super::error::{ErrorKind, HttpError};

/// The URL scheme of a [`Target`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// Plain HTTP/1.1 over TCP.
    Http,
    /// HTTP/1.1 over TLS.
    Https,
}

impl Scheme {
    /// `"http"` or `"https"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }

    /// 80 or 443.
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
}

/// A parsed absolute URL: scheme, host, port and path+query (the fragment is dropped).
///
/// Cheap to clone (one reference count). Parsed by the WHATWG URL Standard, as browsers do:
/// the scheme and domain names are lowercased (non-ASCII names become punycode), a default
/// port is dropped, and bytes that may not appear in a request line (spaces, controls,
/// non-ASCII, `"<>` and more) are percent-encoded.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Target {
    inner: Arc<Inner>,
}

#[derive(PartialEq, Eq, Hash)]
struct Inner {
    scheme: Scheme,
    /// The URL without its fragment.
    url: Url,
    /// `Host` header value: host (bracketed for IPv6) plus `:port` when not the default.
    host_header: HeaderValue,
}

fn invalid(reason: impl Into<String>) -> HttpError {
    HttpError::new(ErrorKind::InvalidUrl(reason.into()))
}

impl Target {
    /// Parses an absolute `http://` or `https://` URL (error code 1020 when it can't).
    #[allow(
        clippy::result_large_err,
        reason = "the error type of the request API; parsing fails rarely and off the hot path"
    )]
    pub fn parse(url: &str) -> Result<Target, HttpError> {
        let url = url.trim();
        let parsed = Url::parse(url).map_err(|e| invalid(e.to_string()))?;
        let target = Target::from_url(parsed, None)?;
        // The URL Standard forgives `http:/x`, `http:///x` and `http:\\x`; Go's `net/url` (so
        // k6) finds no host in them. Require `scheme://` and the host right after it.
        let rest = url
            .get(target.scheme().as_str().len()..)
            .unwrap_or_default();
        if !rest.starts_with("://") || rest[3..].starts_with(['/', '\\']) {
            return Err(invalid("missing host"));
        }
        Ok(target)
    }

    /// Resolves `reference` (absolute, scheme-relative, absolute-path or relative) against
    /// `base`, as RFC 3986 §5.2 (and a browser following a `Location` header) does.
    #[allow(
        clippy::result_large_err,
        reason = "the error type of the request API; parsing fails rarely and off the hot path"
    )]
    pub fn join(base: &Target, reference: &str) -> Result<Target, HttpError> {
        let reference = reference.trim();
        let joined = base
            .inner
            .url
            .join(reference)
            .map_err(|e| invalid(e.to_string()))?;
        Target::from_url(joined, Some(base))
    }

    /// Checks the scheme and host and derives the `Host` header (taken from `base` when the
    /// URL has the same origin, so joining a path allocates no new header value).
    #[allow(
        clippy::result_large_err,
        reason = "the error type of the request API; parsing fails rarely and off the hot path"
    )]
    fn from_url(mut url: Url, base: Option<&Target>) -> Result<Target, HttpError> {
        let scheme = match url.scheme() {
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            other => {
                return Err(invalid(format!("unsupported scheme {other:?}")));
            }
        };
        if url.host_str().is_none_or(str::is_empty) {
            return Err(invalid("missing host"));
        }
        url.set_fragment(None);
        let authority = &url[Position::BeforeHost..Position::AfterPort];
        let host_header = match base {
            Some(base) if base.inner.scheme == scheme && base.authority() == authority => {
                base.inner.host_header.clone()
            }
            _ => HeaderValue::from_str(authority).map_err(|_| invalid("invalid host"))?,
        };
        Ok(Target {
            inner: Arc::new(Inner {
                scheme,
                url,
                host_header,
            }),
        })
    }

    /// `http` or `https`.
    pub fn scheme(&self) -> Scheme {
        self.inner.scheme
    }

    /// The host, without brackets for IPv6 literals.
    pub fn host(&self) -> &str {
        let host = self.inner.url.host_str().unwrap_or_default();
        host.strip_prefix('[')
            .and_then(|inner| inner.strip_suffix(']'))
            .unwrap_or(host)
    }

    /// The port, the scheme's default when the URL has none.
    pub fn port(&self) -> u16 {
        self.inner
            .url
            .port()
            .unwrap_or(self.inner.scheme.default_port())
    }

    /// The host when it is an IP literal.
    pub fn ip(&self) -> Option<IpAddr> {
        match self.inner.url.host()? {
            Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
            Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
            Host::Domain(_) => None,
        }
    }

    /// Path and query as sent in the request line (always starts with `/`).
    pub fn path_and_query(&self) -> &str {
        &self.inner.url[Position::BeforePath..Position::AfterQuery]
    }

    /// `user:password` from the URL, if any (percent-encoded).
    pub fn userinfo(&self) -> Option<&str> {
        self.inner.url[Position::BeforeUsername..Position::BeforeHost].strip_suffix('@')
    }

    /// The `Host` header value for this target.
    pub fn host_header(&self) -> &HeaderValue {
        &self.inner.host_header
    }

    /// Whether both targets are served by the same connection (scheme, host and port).
    pub fn same_origin(&self, other: &Target) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
            || (self.inner.scheme == other.inner.scheme && self.authority() == other.authority())
    }

    /// `host[:port]` as serialized (lowercase, IPv6 bracketed, no default port).
    pub fn authority(&self) -> &str {
        &self.inner.url[Position::BeforeHost..Position::AfterPort]
    }
}

impl fmt::Display for Target {
    /// `scheme://host[:port]/path?query`, without user info.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}://{}{}",
            self.inner.scheme.as_str(),
            self.authority(),
            self.path_and_query()
        )
    }
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Target({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Target {
        Target::parse(s).unwrap()
    }

    #[test]
    fn parses_parts() {
        let target = t("http://127.0.0.1:8080/api/x?y=1#frag");
        assert_eq!(target.scheme(), Scheme::Http);
        assert_eq!(target.host(), "127.0.0.1");
        assert_eq!(target.port(), 8080);
        assert_eq!(target.path_and_query(), "/api/x?y=1");
        assert_eq!(target.host_header(), "127.0.0.1:8080");
        assert_eq!(target.to_string(), "http://127.0.0.1:8080/api/x?y=1");

        let target = t("HTTPS://user:pw@Example.com?q");
        assert_eq!(target.scheme(), Scheme::Https);
        assert_eq!(target.port(), 443);
        assert_eq!(target.path_and_query(), "/?q");
        assert_eq!(target.host(), "example.com");
        assert_eq!(target.host_header(), "example.com");
        assert_eq!(target.ip(), None);
        assert_eq!(target.userinfo(), Some("user:pw"));
        assert_eq!(t("http://u@h/").userinfo(), Some("u"));
        assert_eq!(t("http://h/").userinfo(), None);

        let target = t("http://[::1]:81/a b");
        assert_eq!(target.host(), "::1");
        assert_eq!(target.ip(), Some("::1".parse().unwrap()));
        assert_eq!(target.host_header(), "[::1]:81");
        assert_eq!(target.path_and_query(), "/a%20b");

        let target = t(" http://h:80/caf\u{e9}/\"x\"?q=a b&r=<\u{e9}> ");
        assert_eq!(target.port(), 80);
        assert_eq!(target.host_header(), "h");
        assert_eq!(
            target.path_and_query(),
            "/caf%C3%A9/%22x%22?q=a%20b&r=%3C%C3%A9%3E"
        );
        let target = t("https://b\u{fc}cher.example:8443");
        assert_eq!(target.host(), "xn--bcher-kva.example");
        assert_eq!(target.host_header(), "xn--bcher-kva.example:8443");
        assert_eq!(target.to_string(), "https://xn--bcher-kva.example:8443/");
        assert_eq!(
            t("http://127.1:1/").ip(),
            Some("127.0.0.1".parse().unwrap())
        );
    }

    #[test]
    fn rejects_bad_urls_with_1020() {
        for bad in [
            "",
            "127.0.0.1/x",
            "ftp://host/",
            "http:///x",
            "http:/x",
            "http:\\\\x/",
            "http://",
            "http://?x",
            "mailto:a@b",
            "http:/x?u=http://y",
            "\u{1}http://x/",
            "http://host:port/",
            "http://host:99999/",
            "http://[::1/",
            "http://a b/",
        ] {
            let err = Target::parse(bad).unwrap_err();
            assert_eq!(err.error_code(), 1020, "{bad}");
        }
    }

    #[test]
    fn joins_references() {
        let base = t("http://a:8/b/c/d;p?q");
        let cases = [
            ("g", "http://a:8/b/c/g"),
            ("./g", "http://a:8/b/c/g"),
            ("g/", "http://a:8/b/c/g/"),
            ("/g", "http://a:8/g"),
            ("//g", "http://g/"),
            ("?y", "http://a:8/b/c/d;p?y"),
            ("g?y", "http://a:8/b/c/g?y"),
            ("#s", "http://a:8/b/c/d;p?q"),
            ("", "http://a:8/b/c/d;p?q"),
            (".", "http://a:8/b/c/"),
            ("..", "http://a:8/b/"),
            ("../g", "http://a:8/b/g"),
            ("../../../g", "http://a:8/g"),
            ("/./g", "http://a:8/g"),
            ("g/../h", "http://a:8/b/c/h"),
            ("https://other/x", "https://other/x"),
            ("HTTP://Other:80/x#f", "http://other/x"),
            ("g h?x y", "http://a:8/b/c/g%20h?x%20y"),
        ];
        for (reference, expected) in cases {
            assert_eq!(
                Target::join(&base, reference).unwrap().to_string(),
                expected,
                "{reference}"
            );
        }
        let joined = Target::join(&base, "/x").unwrap();
        assert!(joined.same_origin(&base));
        assert_eq!(joined.host_header(), "a:8");
        for bad in ["ftp://a/", "http://", "http://a:x/"] {
            assert_eq!(
                Target::join(&base, bad).unwrap_err().error_code(),
                1020,
                "{bad}"
            );
        }
    }

    #[test]
    fn origin_equality() {
        assert!(t("http://h:1/a").same_origin(&t("http://H:1/b?c")));
        assert!(t("http://h/a").same_origin(&t("http://h:80/")));
        assert!(!t("http://h:1/a").same_origin(&t("https://h:1/a")));
        assert!(!t("http://h:1/a").same_origin(&t("http://h:2/a")));
    }
}
