//! A resource request read from its URL alone, as kube-apiserver's RequestInfo filter reads it
//! before any handler (its own or a delegate's) sees the request: verb, group, version,
//! resource, subresource, namespace, name. The stand-in authorizes forwarded requests on it.

use http::Method;

use crate::apiserver::auth;
use crate::apiserver::rbac::Attributes;

/// The parts of a resource request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestInfo {
    /// get list watch create update patch delete deletecollection.
    pub verb: String,
    /// API group.
    pub group: String,
    /// Version.
    pub version: String,
    /// Resource (plural).
    pub resource: String,
    /// Subresource, "" for none.
    pub subresource: String,
    /// Namespace, "" for cluster-scoped or all-namespace requests.
    pub namespace: String,
    /// The object's name ("" for collections; for list and watch, a `metadata.name=` field
    /// selector's value, as the real server does).
    pub name: String,
}

impl RequestInfo {
    /// Reads `/apis/{group}/{version}/...` (already split into `segments`); None when the
    /// path names no resource.
    pub fn parse(method: &Method, segments: &[&str], query: Option<&str>) -> Option<RequestInfo> {
        let ["apis", group, version, rest @ ..] = segments else {
            return None;
        };
        // `namespaces/{ns}/{resource}/...` is namespaced; a bare `namespaces[/{name}]` would be
        // the Namespace kind itself, which no API group but core has.
        let (namespace, rest) = match rest {
            ["namespaces", namespace, tail @ ..] if !tail.is_empty() => (*namespace, tail),
            _ => ("", rest),
        };
        let (resource, name, subresource) = match rest {
            [resource] => (*resource, "", ""),
            [resource, name] => (*resource, *name, ""),
            [resource, name, subresource] => (*resource, *name, *subresource),
            _ => return None,
        };
        let params: Vec<(String, String)> = query
            .map(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .into_owned()
                    .collect()
            })
            .unwrap_or_default();
        let param = |key: &str| {
            params
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
        };
        let watch = matches!(param("watch"), Some("true" | "1"));
        let verb = auth::verb(method, !name.is_empty(), watch);
        let selected = auth::selected_name(param("fieldSelector").unwrap_or("")).to_string();
        Some(RequestInfo {
            verb: verb.to_string(),
            group: group.to_string(),
            version: version.to_string(),
            resource: resource.to_string(),
            subresource: subresource.to_string(),
            namespace: namespace.to_string(),
            name: if name.is_empty() && matches!(verb, "list" | "watch") {
                selected
            } else {
                name.to_string()
            },
        })
    }

    /// The authorizer's attributes.
    pub fn attributes(&self) -> Attributes {
        Attributes {
            verb: self.verb.clone(),
            api_group: self.group.clone(),
            resource: self.resource.clone(),
            subresource: self.subresource.clone(),
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            path: String::new(),
            resource_request: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(method: Method, path: &str, query: Option<&str>) -> Option<RequestInfo> {
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        RequestInfo::parse(&method, &segments, query)
    }

    fn summary(info: &RequestInfo) -> String {
        format!(
            "{} {}/{} {}/{} ns={} name={}",
            info.verb,
            info.group,
            info.version,
            info.resource,
            info.subresource,
            info.namespace,
            info.name
        )
    }

    #[test]
    fn reads_verbs_scopes_names_and_subresources() {
        let cases = [
            (
                Method::GET,
                "/apis/stampede.dev/v1alpha1/namespaces/shop/loadtests/spike",
                None,
                "get stampede.dev/v1alpha1 loadtests/ ns=shop name=spike",
            ),
            (
                Method::GET,
                "/apis/stampede.dev/v1alpha1/loadtests",
                Some("watch=true&fieldSelector=metadata.name%3Dspike"),
                "watch stampede.dev/v1alpha1 loadtests/ ns= name=spike",
            ),
            (
                Method::GET,
                "/apis/stampede.dev/v1alpha1/namespaces/shop/loadtests",
                Some("labelSelector=a%3Db"),
                "list stampede.dev/v1alpha1 loadtests/ ns=shop name=",
            ),
            (
                Method::PATCH,
                "/apis/stampede.dev/v1alpha1/namespaces/shop/loadtests/spike/status",
                Some("fieldManager=op&force=true"),
                "patch stampede.dev/v1alpha1 loadtests/status ns=shop name=spike",
            ),
            (
                Method::POST,
                "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
                None,
                "create apiextensions.k8s.io/v1 customresourcedefinitions/ ns= name=",
            ),
            (
                Method::DELETE,
                "/apis/stampede.dev/v1alpha1/namespaces/shop/loadtests",
                None,
                "deletecollection stampede.dev/v1alpha1 loadtests/ ns=shop name=",
            ),
            (
                Method::PUT,
                "/apis/widgets.example/v1/clusterwidgets/w1",
                None,
                "update widgets.example/v1 clusterwidgets/ ns= name=w1",
            ),
        ];
        for (method, path, query, want) in cases {
            let info = parse(method, path, query).unwrap_or_else(|| panic!("{path}"));
            assert_eq!(summary(&info), want, "{path}");
        }
        assert_eq!(parse(Method::GET, "/apis/g/v", None), None);
        assert_eq!(parse(Method::GET, "/apis/g/v/a/b/c/d", None), None);
    }

    #[test]
    fn attributes_are_a_resource_request() {
        let info = parse(
            Method::GET,
            "/apis/stampede.dev/v1alpha1/namespaces/shop/loadtests/spike",
            None,
        )
        .unwrap();
        let attributes = info.attributes();
        assert!(attributes.resource_request);
        assert_eq!(
            (attributes.verb.as_str(), attributes.namespace.as_str()),
            ("get", "shop")
        );
    }
}
