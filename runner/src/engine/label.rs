//! How log lines and error messages name a request: its method, its URL as the flow wrote it
//! (the template) and the host it went to, never the rendered URL, whose path and query may
//! carry tokens from env, Secrets or captures.

use std::fmt;

use http::Method;
use stampede_crds::template::Template;

use crate::http::Target;

/// `POST /v1/orders?token=${env.TOKEN} (to 127.0.0.1:8080)`.
pub(crate) struct RequestLabel<'a> {
    pub method: &'a Method,
    pub url: &'a Template,
    pub target: &'a Target,
}

impl fmt::Display for RequestLabel<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} (to {})",
            self.method,
            self.url,
            self.target.authority()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_the_template_and_host_not_the_rendered_url() {
        let url = stampede_crds::template::parse("/v1/orders?token=${env.TOKEN}").unwrap();
        let target = Target::parse("http://127.0.0.1:8080/v1/orders?token=s3cr3t").unwrap();
        let label = RequestLabel {
            method: &Method::POST,
            url: &url,
            target: &target,
        };
        let text = label.to_string();
        assert_eq!(
            text,
            "POST /v1/orders?token=${env.TOKEN} (to 127.0.0.1:8080)"
        );
        assert!(!text.contains("s3cr3t"));
    }
}
