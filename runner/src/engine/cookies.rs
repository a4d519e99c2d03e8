//! A VU's cookie jar: cookies set by responses, sent back to matching hosts and paths, reset
//! before every iteration unless `noCookiesReset` (k6).

/// One stored cookie.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Cookie {
    name: String,
    value: String,
    domain: String,
    host_only: bool,
    path: String,
}

/// The cookies of one VU.
#[derive(Debug, Default, Clone)]
pub struct CookieJar {
    cookies: Vec<Cookie>,
}

impl CookieJar {
    /// Forgets every cookie.
    pub fn clear(&mut self) {
        self.cookies.clear();
    }

    /// True when the jar holds no cookie.
    pub fn is_empty(&self) -> bool {
        self.cookies.is_empty()
    }

    /// Stores a `Set-Cookie` header received from `host` for a request to `request_path`.
    pub fn store(&mut self, header: &str, host: &str, request_path: &str) {
        let mut parts = header.split(';');
        let Some((name, value)) = parts.next().and_then(|pair| pair.split_once('=')) else {
            return;
        };
        let (name, value) = (name.trim(), value.trim().trim_matches('"'));
        if name.is_empty() {
            return;
        }
        let mut domain = host.to_ascii_lowercase();
        let mut host_only = true;
        let mut path = default_path(request_path);
        let mut expired = false;
        for attribute in parts {
            let (key, attr_value) = attribute.split_once('=').unwrap_or((attribute, ""));
            match key.trim().to_ascii_lowercase().as_str() {
                "domain" => {
                    let value = attr_value
                        .trim()
                        .trim_start_matches('.')
                        .to_ascii_lowercase();
                    if !value.is_empty() && domain_matches(&domain, &value) {
                        domain = value;
                        host_only = false;
                    }
                }
                "path" if attr_value.trim().starts_with('/') => {
                    path = attr_value.trim().to_string()
                }
                "max-age" => expired |= attr_value.trim().parse::<i64>().is_ok_and(|age| age <= 0),
                "expires" => expired |= attr_value.contains("1970"),
                _ => {}
            }
        }
        self.cookies
            .retain(|c| !(c.name == name && c.domain == domain && c.path == path));
        if !expired {
            self.cookies.push(Cookie {
                name: name.to_string(),
                value: value.to_string(),
                domain,
                host_only,
                path,
            });
        }
    }

    /// The `Cookie` header for a request to `host` and `path`, if any cookie matches.
    pub fn header_for(&self, host: &str, path: &str) -> Option<String> {
        let host = host.to_ascii_lowercase();
        let mut header = String::new();
        for cookie in &self.cookies {
            let host_ok = if cookie.host_only {
                host == cookie.domain
            } else {
                domain_matches(&host, &cookie.domain)
            };
            if host_ok && path_matches(path, &cookie.path) {
                if !header.is_empty() {
                    header.push_str("; ");
                }
                header.push_str(&cookie.name);
                header.push('=');
                header.push_str(&cookie.value);
            }
        }
        (!header.is_empty()).then_some(header)
    }

    /// The value of a cookie by name (for `cookie("name")` checks and captures).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.cookies
            .iter()
            .rev()
            .find(|c| c.name == name)
            .map(|c| c.value.as_str())
    }
}

fn default_path(request_path: &str) -> String {
    let path = request_path.split('?').next().unwrap_or("/");
    match path.rfind('/') {
        Some(0) | None => "/".to_string(),
        Some(index) => path[..index].to_string(),
    }
}

fn domain_matches(host: &str, domain: &str) -> bool {
    host == domain || (host.ends_with(domain) && host[..host.len() - domain.len()].ends_with('.'))
}

fn path_matches(request_path: &str, cookie_path: &str) -> bool {
    let path = request_path.split('?').next().unwrap_or("/");
    path == cookie_path
        || (path.starts_with(cookie_path)
            && (cookie_path.ends_with('/') || path[cookie_path.len()..].starts_with('/')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_sends_and_expires_cookies() {
        let mut jar = CookieJar::default();
        jar.store(
            "session_id=abc; Path=/; HttpOnly",
            "127.0.0.1",
            "/api/login",
        );
        jar.store("pref=dark; Path=/app", "127.0.0.1", "/api/login");
        assert_eq!(
            jar.header_for("127.0.0.1", "/api/stock"),
            Some("session_id=abc".into())
        );
        assert_eq!(
            jar.header_for("127.0.0.1", "/app/x"),
            Some("session_id=abc; pref=dark".into())
        );
        assert_eq!(jar.header_for("example.test", "/"), None);
        assert_eq!(jar.get("session_id"), Some("abc"));
        jar.store("session_id=; Max-Age=0; Path=/", "127.0.0.1", "/api/logout");
        assert_eq!(jar.get("session_id"), None);
        jar.clear();
        assert!(jar.is_empty());
    }
}
