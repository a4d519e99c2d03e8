//! Request targets: absolute `http`/`https` URLs split once into what the client needs.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use http::HeaderValue;
use http::uri::PathAndQuery;

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
/// Cheap to clone (one reference count). Bytes that may not appear in a request line
/// (spaces, controls, non-ASCII, `"<>\^`{|}`) are percent-encoded while parsing, as Go's
/// `net/url` does for paths.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Target {
    inner: Arc<Inner>,
}

#[derive(PartialEq, Eq, Hash)]
struct Inner {
    scheme: Scheme,
    /// The authority as written, user info included (`user:pw@Host:8080`).
    authority: Box<str>,
    /// Host without brackets or port (`::1`, `example.com`).
    host: Box<str>,
    port: u16,
    ip: Option<IpAddr>,
    path_and_query: PathAndQuery,
    /// `Host` header value: host (bracketed for IPv6) plus `:port` when not the default.
    host_header: HeaderValue,
    userinfo: Option<Box<str>>,
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
        let (scheme_str, rest) = url
            .split_once("://")
            .ok_or_else(|| invalid(format!("{url:?}: missing scheme")))?;
        let scheme = if scheme_str.eq_ignore_ascii_case("http") {
            Scheme::Http
        } else if scheme_str.eq_ignore_ascii_case("https") {
            Scheme::Https
        } else {
            return Err(invalid(format!(
                "{url:?}: unsupported scheme {scheme_str:?}"
            )));
        };
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        let tail = tail.split_once('#').map_or(tail, |(before, _)| before);
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((user, hostport)) => (Some(user), hostport),
            None => (None, authority),
        };
        let (host, port) = split_host_port(hostport)
            .ok_or_else(|| invalid(format!("{url:?}: invalid host or port")))?;
        if host.is_empty() {
            return Err(invalid(format!("{url:?}: missing host")));
        }
        let port = port.unwrap_or(scheme.default_port());
        let ip = host.parse::<IpAddr>().ok();
        if ip.is_none() && !host.bytes().all(is_host_byte) {
            return Err(invalid(format!("{url:?}: invalid host")));
        }
        let mut pq = String::with_capacity(tail.len() + 1);
        if !tail.starts_with('/') {
            pq.push('/');
        }
        percent_encode_into(&mut pq, tail);
        let path_and_query = PathAndQuery::try_from(pq)
            .map_err(|e| invalid(format!("{url:?}: invalid path: {e}")))?;
        let host_header = {
            let mut value = if matches!(ip, Some(IpAddr::V6(_))) {
                format!("[{host}]")
            } else {
                host.to_owned()
            };
            if port != scheme.default_port() {
                value.push(':');
                value.push_str(&port.to_string());
            }
            HeaderValue::try_from(value).map_err(|_| invalid(format!("{url:?}: invalid host")))?
        };
        Ok(Target {
            inner: Arc::new(Inner {
                scheme,
                authority: authority.into(),
                host: host.into(),
                port,
                ip,
                path_and_query,
                host_header,
                userinfo: userinfo.map(Into::into),
            }),
        })
    }

    /// Resolves `reference` (absolute, scheme-relative, absolute-path or relative) against
    /// `base`, as RFC 3986 §5.2 (and a browser following a `Location` header) does.
    #[allow(
        clippy::result_large_err,
        reason = "the error type of the request API; parsing fails rarely and off the hot path"
    )]
    pub fn join(base: &Target, reference: &str) -> Result<Target, HttpError> {
        let reference = reference.trim();
        if has_scheme(reference) {
            return Target::parse(reference);
        }
        let scheme = base.scheme().as_str();
        if reference.starts_with("//") {
            return Target::parse(&format!("{scheme}:{reference}"));
        }
        let reference = reference
            .split_once('#')
            .map_or(reference, |(before, _)| before);
        let (ref_path, ref_query) = match reference.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (reference, None),
        };
        let base_pq = base.path_and_query();
        let (base_path, base_query) = match base_pq.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (base_pq, None),
        };
        let (path, query) = if ref_path.is_empty() {
            (base_path.to_owned(), ref_query.or(base_query))
        } else if ref_path.starts_with('/') {
            (remove_dot_segments(ref_path), ref_query)
        } else {
            let dir = base_path.rfind('/').map_or("/", |i| &base_path[..=i]);
            (remove_dot_segments(&format!("{dir}{ref_path}")), ref_query)
        };
        let mut url = format!("{scheme}://{}{path}", base.inner.authority);
        if let Some(query) = query {
            url.push('?');
            url.push_str(query);
        }
        Target::parse(&url)
    }

    /// `http` or `https`.
    pub fn scheme(&self) -> Scheme {
        self.inner.scheme
    }

    /// The host, without brackets for IPv6 literals.
    pub fn host(&self) -> &str {
        &self.inner.host
    }

    /// The port, the scheme's default when the URL has none.
    pub fn port(&self) -> u16 {
        self.inner.port
    }

    /// The host when it is an IP literal.
    pub fn ip(&self) -> Option<IpAddr> {
        self.inner.ip
    }

    /// Path and query as sent in the request line (always starts with `/`).
    pub fn path_and_query(&self) -> &str {
        self.inner.path_and_query.as_str()
    }

    /// `user:password` from the URL, if any (still percent-encoded).
    pub fn userinfo(&self) -> Option<&str> {
        self.inner.userinfo.as_deref()
    }

    /// The `Host` header value for this target.
    pub fn host_header(&self) -> &HeaderValue {
        &self.inner.host_header
    }

    /// Whether both targets are served by the same connection (scheme, host and port).
    pub fn same_origin(&self, other: &Target) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
            || (self.inner.scheme == other.inner.scheme
                && self.inner.port == other.inner.port
                && self.inner.host.eq_ignore_ascii_case(&other.inner.host))
    }
}

impl fmt::Display for Target {
    /// `scheme://host[:port]/path?query`, without user info.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = self.inner.host_header.to_str().unwrap_or_default();
        write!(
            f,
            "{}://{host}{}",
            self.inner.scheme.as_str(),
            self.path_and_query()
        )
    }
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Target({self})")
    }
}

/// Splits `host[:port]` or `[v6][:port]`; `None` when the port is not a number.
fn split_host_port(hostport: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = if let Some(rest) = hostport.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        host.parse::<std::net::Ipv6Addr>().ok()?;
        match after {
            "" => (host, None),
            _ => (host, Some(after.strip_prefix(':')?)),
        }
    } else {
        match hostport.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (hostport, None),
        }
    };
    let port = match port {
        None | Some("") => None,
        Some(port) if port.bytes().all(|b| b.is_ascii_digit()) => Some(port.parse().ok()?),
        Some(_) => return None,
    };
    Some((host, port))
}

fn is_host_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'%')
}

fn has_scheme(s: &str) -> bool {
    let Some((scheme, _)) = s.split_once(':') else {
        return false;
    };
    let mut bytes = scheme.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
}

fn percent_encode_into(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in s.as_bytes() {
        let escape = b <= b' '
            || b >= 0x7f
            || matches!(
                b,
                b'"' | b'<' | b'>' | b'\\' | b'^' | b'`' | b'{' | b'|' | b'}'
            );
        if escape {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        } else {
            out.push(char::from(b));
        }
    }
}

/// RFC 3986 §5.2.4 on an absolute path.
fn remove_dot_segments(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let last = segments.len().saturating_sub(1);
    let mut trailing_slash = false;
    for (i, segment) in segments.iter().enumerate() {
        match *segment {
            "." => trailing_slash = i == last,
            ".." => {
                out.pop();
                trailing_slash = i == last;
            }
            s => {
                out.push(s);
                trailing_slash = false;
            }
        }
    }
    let mut result = String::with_capacity(path.len());
    for segment in &out {
        result.push('/');
        result.push_str(segment);
    }
    if trailing_slash || result.is_empty() {
        result.push('/');
    }
    result
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
        assert_eq!(target.host_header(), "Example.com");
        assert_eq!(target.userinfo(), Some("user:pw"));

        let target = t("http://[::1]:81/a b");
        assert_eq!(target.host(), "::1");
        assert_eq!(target.ip(), Some("::1".parse().unwrap()));
        assert_eq!(target.host_header(), "[::1]:81");
        assert_eq!(target.path_and_query(), "/a%20b");
    }

    #[test]
    fn rejects_bad_urls_with_1020() {
        for bad in [
            "",
            "127.0.0.1/x",
            "ftp://host/",
            "http:///x",
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
        ];
        for (reference, expected) in cases {
            assert_eq!(
                Target::join(&base, reference).unwrap().to_string(),
                expected,
                "{reference}"
            );
        }
    }

    #[test]
    fn origin_equality() {
        assert!(t("http://h:1/a").same_origin(&t("http://H:1/b?c")));
        assert!(!t("http://h:1/a").same_origin(&t("https://h:1/a")));
        assert!(!t("http://h:1/a").same_origin(&t("http://h:2/a")));
    }
}
