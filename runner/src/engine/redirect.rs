//! What a redirect hop may carry: credentials stay with the host they were written for, as
//! Go's client (so k6) decides it in `shouldCopyHeaderOnRedirect`.

use http::HeaderMap;
use http::header::{AUTHORIZATION, COOKIE, HeaderName, PROXY_AUTHORIZATION, WWW_AUTHENTICATE};

/// Headers that carry credentials: dropped on a hop to another host (Go drops `Authorization`,
/// `Www-Authenticate`, `Cookie` and `Cookie2`; `Proxy-Authorization` goes too, since a new
/// host may sit behind another proxy).
const CREDENTIAL_HEADERS: [HeaderName; 4] =
    [AUTHORIZATION, PROXY_AUTHORIZATION, COOKIE, WWW_AUTHENTICATE];

/// `Cookie2`, which `http` has no constant for.
const COOKIE2: &str = "cookie2";

/// Whether a hop to `hop_host` may carry the credentials written for `first_host` (the host of
/// the request as the flow wrote it, not of the previous hop): the same host, or a subdomain
/// of it. Ports do not matter, as in Go. Hosts come lowercased from the URL parser.
pub(crate) fn keeps_credentials(first_host: &str, hop_host: &str) -> bool {
    if first_host == hop_host {
        return true;
    }
    // `1.2.3.4` is not a "subdomain" of `2.3.4`; IP literals only match themselves.
    let is_ip = |host: &str| host.parse::<std::net::IpAddr>().is_ok();
    !is_ip(first_host)
        && !is_ip(hop_host)
        && hop_host
            .strip_suffix(first_host)
            .is_some_and(|prefix| prefix.ends_with('.'))
}

/// Removes every credential header from a hop's headers.
pub(crate) fn strip_credentials(headers: &mut HeaderMap) {
    for name in &CREDENTIAL_HEADERS {
        headers.remove(name);
    }
    headers.remove(COOKIE2);
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn credentials_follow_the_same_host_and_its_subdomains_only() {
        assert!(keeps_credentials("shop.test", "shop.test"));
        assert!(keeps_credentials("shop.test", "api.shop.test"));
        assert!(keeps_credentials("127.0.0.1", "127.0.0.1"));
        assert!(!keeps_credentials("shop.test", "evilshop.test"));
        assert!(!keeps_credentials("api.shop.test", "shop.test"));
        assert!(!keeps_credentials("127.0.0.1", "localhost"));
        assert!(!keeps_credentials("0.0.1", "127.0.0.1"));
        assert!(!keeps_credentials("::1", "127.0.0.1"));
    }

    #[test]
    fn stripping_leaves_other_headers() {
        let mut headers = HeaderMap::new();
        for name in [
            "authorization",
            "proxy-authorization",
            "cookie",
            "cookie2",
            "www-authenticate",
            "x-api-key",
            "accept",
        ] {
            headers.insert(HeaderName::from_static(name), HeaderValue::from_static("v"));
        }
        strip_credentials(&mut headers);
        let mut left: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        left.sort_unstable();
        assert_eq!(left, ["accept", "x-api-key"]);
    }
}
