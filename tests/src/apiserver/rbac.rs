//! RBAC authorization like kube-apiserver's (Roles, ClusterRoles, bindings) and its 403 message.
//!
//! This follows `plugin/pkg/auth/authorizer/rbac` and `pkg/registry/rbac/validation` in
//! k8s.io/kubernetes. Bindings are read in the same order: ClusterRoleBindings first, then the
//! RoleBindings of the request's namespace. A request is allowed if any rule reached through a
//! binding that names the user allows it. Requests with no namespace (cluster-scoped or
//! all-namespaces) and non-resource requests never look at RoleBindings.
//!
//! The authorizer chain in front of RBAC is reduced to the privileged-group authorizer:
//! `system:masters` is allowed everything. The bootstrap policy every cluster has
//! (`system:discovery`, `system:basic-user`, `system:public-info-viewer` and `cluster-admin`) is
//! always present (see `bootstrap_policy`).
//!
//! Not supported: ClusterRole `aggregationRule`. The controller that fills in an aggregated
//! ClusterRole's `rules` doesn't run here, so an aggregated ClusterRole grants only the `rules`
//! stored on it. The bootstrap roles built on aggregation (`admin`, `edit`, `view`) are not
//! built in either.

use std::sync::LazyLock;

use serde_json::{Value, json};

use super::render::go_quote;

/// The group whose members are allowed everything (`user.SystemPrivilegedGroup`).
const PRIVILEGED_GROUP: &str = "system:masters";
/// The group every authenticated user is in (`user.AllAuthenticated`).
const ALL_AUTHENTICATED: &str = "system:authenticated";
/// The group of requests without credentials (`user.AllUnauthenticated`).
const ALL_UNAUTHENTICATED: &str = "system:unauthenticated";
/// How a service account's user name starts (`serviceaccount.ServiceAccountUsernamePrefix`).
const SERVICE_ACCOUNT_USERNAME_PREFIX: &str = "system:serviceaccount:";
/// The API group of the RBAC objects, used in "not found" errors.
const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

/// Who makes a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The user name, e.g. `system:serviceaccount:ns:sa` or `kubernetes-admin`.
    pub name: String,
    /// The groups the user belongs to, e.g. `system:authenticated`.
    pub groups: Vec<String>,
}

impl User {
    /// The identity of a service account: name `system:serviceaccount:<ns>:<name>`, groups
    /// `system:serviceaccounts`, `system:serviceaccounts:<ns>`, `system:authenticated`.
    pub fn service_account(namespace: &str, name: &str) -> User {
        User {
            name: format!("{SERVICE_ACCOUNT_USERNAME_PREFIX}{namespace}:{name}"),
            groups: vec![
                "system:serviceaccounts".to_string(),
                format!("system:serviceaccounts:{namespace}"),
                ALL_AUTHENTICATED.to_string(),
            ],
        }
    }

    /// The cluster admin (group `system:masters`, plus `system:authenticated`), named
    /// `kubernetes-admin` like the user of a kubeadm or kind cluster's admin kubeconfig.
    pub fn admin() -> User {
        User {
            name: "kubernetes-admin".to_string(),
            groups: vec![PRIVILEGED_GROUP.to_string(), ALL_AUTHENTICATED.to_string()],
        }
    }

    fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }
}

/// What a request does, as kube-apiserver's authorizer sees it (k8s.io/apiserver authorizer.Attributes).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Attributes {
    /// The verb: get list watch create update patch delete deletecollection (or "impersonate",
    /// etc.); for non-resource requests the lowercased HTTP method (`get`, `post`, ...).
    pub verb: String,
    /// The API group, "" for core.
    pub api_group: String,
    /// The resource, plural, e.g. "configmaps".
    pub resource: String,
    /// The subresource, "" or e.g. "status", "log".
    pub subresource: String,
    /// The namespace, "" for cluster-scoped or all-namespaces requests.
    pub namespace: String,
    /// The object's name, "" when the request names no object (for list and watch, the name
    /// from a `metadata.name=` field selector).
    pub name: String,
    /// For non-resource requests: the URL path, e.g. "/api", "/version".
    pub path: String,
    /// Whether this is a request for an API resource (as opposed to a non-resource path).
    pub resource_request: bool,
}

/// The authorizer's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The request may proceed.
    Allow,
    /// The request is refused with 403 Forbidden.
    Deny,
}

/// RBAC authorization over the stored RBAC objects: `roles` / `role_bindings` (namespaced, JSON as
/// the API shows them: metadata.namespace, rules, subjects, roleRef) and `cluster_roles` /
/// `cluster_role_bindings`.
pub fn authorize(
    user: &User,
    attributes: &Attributes,
    roles: &[Value],
    role_bindings: &[Value],
    cluster_roles: &[Value],
    cluster_role_bindings: &[Value],
) -> Decision {
    authorize_with_reason(
        user,
        attributes,
        roles,
        role_bindings,
        cluster_roles,
        cluster_role_bindings,
    )
    .0
}

/// Like [`authorize`], and also the reason RBAC gives with a denial: empty, or the bindings whose
/// role could not be found, e.g. `RBAC: role.rbac.authorization.k8s.io "x" not found` (several
/// as `RBAC: [a, b]`). kube-apiserver appends a non-empty reason to the 403 message, see
/// [`forbidden_message_with_reason`]. The reason of an allowed request is empty.
pub fn authorize_with_reason(
    user: &User,
    attributes: &Attributes,
    roles: &[Value],
    role_bindings: &[Value],
    cluster_roles: &[Value],
    cluster_role_bindings: &[Value],
) -> (Decision, String) {
    if user.in_group(PRIVILEGED_GROUP) {
        return (Decision::Allow, String::new());
    }
    let bootstrap = &*BOOTSTRAP_POLICY;
    let resolver = Resolver {
        roles,
        cluster_roles,
        bootstrap_cluster_roles: &bootstrap.cluster_roles,
    };
    let mut errors: Vec<String> = Vec::new();

    // VisitRulesFor: the ClusterRoleBindings, then the RoleBindings of the request's namespace.
    let cluster_wide = cluster_role_bindings
        .iter()
        .chain(&bootstrap.cluster_role_bindings)
        .map(|binding| (binding, ""));
    let namespace = attributes.namespace.as_str();
    let namespaced = role_bindings
        .iter()
        .filter(|binding| {
            !namespace.is_empty() && str_at(binding, &["metadata", "namespace"]) == namespace
        })
        .map(|binding| (binding, namespace));
    for (binding, binding_namespace) in cluster_wide.chain(namespaced) {
        if !applies_to(user, binding, binding_namespace) {
            continue;
        }
        match resolver.role_ref_rules(binding, binding_namespace) {
            Ok(rules) if rules.iter().any(|rule| rule.allows(attributes)) => {
                return (Decision::Allow, String::new());
            }
            Ok(_) => {}
            Err(error) => errors.push(error),
        }
    }

    let reason = if errors.is_empty() {
        String::new()
    } else {
        format!("RBAC: {}", aggregate(&errors))
    };
    (Decision::Deny, reason)
}

/// The 403 message kube-apiserver returns, e.g.
/// `configmaps "x" is forbidden: User "system:serviceaccount:ns:sa" cannot get resource "configmaps" in API group "" in the namespace "ns"`,
/// `configmaps is forbidden: User "u" cannot list resource "configmaps" in API group "" in the namespace "ns"`,
/// `loadtests.stampede.dev "t" is forbidden: User "u" cannot patch resource "loadtests/status" in API group "stampede.dev" in the namespace "ns"`,
/// `namespaces is forbidden: User "u" cannot list resource "namespaces" in API group "" at the cluster scope`,
/// and for non-resource paths `forbidden: User "u" cannot get path "/metrics"`.
///
/// This is the message without the authorizer's reason; see [`forbidden_message_with_reason`].
pub fn forbidden_message(user: &User, attributes: &Attributes) -> String {
    forbidden_message_with_reason(user, attributes, "")
}

/// [`forbidden_message`] with the authorizer's reason (from [`authorize_with_reason`]) appended
/// as kube-apiserver does: `<message>: <reason>` when the reason is not empty.
pub fn forbidden_message_with_reason(user: &User, attributes: &Attributes, reason: &str) -> String {
    // responsewriters.forbiddenMessage
    let detail = if !attributes.resource_request {
        format!(
            "User {} cannot {} path {}",
            go_quote(&user.name),
            attributes.verb,
            go_quote(&attributes.path)
        )
    } else {
        let mut resource = attributes.resource.clone();
        if !attributes.subresource.is_empty() {
            resource.push('/');
            resource.push_str(&attributes.subresource);
        }
        let scope = if attributes.namespace.is_empty() {
            "at the cluster scope".to_string()
        } else {
            format!("in the namespace {}", go_quote(&attributes.namespace))
        };
        format!(
            "User {} cannot {} resource {} in API group {} {scope}",
            go_quote(&user.name),
            attributes.verb,
            go_quote(&resource),
            go_quote(&attributes.api_group),
        )
    };
    let detail = if reason.is_empty() {
        detail
    } else {
        format!("{detail}: {reason}")
    };
    // apierrors.NewForbidden(GroupResource{group, resource}, name, err)
    let qualified = if attributes.api_group.is_empty() {
        attributes.resource.clone()
    } else {
        format!("{}.{}", attributes.resource, attributes.api_group)
    };
    if qualified.is_empty() {
        format!("forbidden: {detail}")
    } else if attributes.name.is_empty() {
        format!("{qualified} is forbidden: {detail}")
    } else {
        format!(
            "{qualified} {} is forbidden: {detail}",
            go_quote(&attributes.name)
        )
    }
}

/// The RBAC objects every cluster has from kube-apiserver's bootstrap policy, in API JSON form.
#[derive(Debug)]
struct BootstrapPolicy {
    cluster_roles: Vec<Value>,
    cluster_role_bindings: Vec<Value>,
}

static BOOTSTRAP_POLICY: LazyLock<BootstrapPolicy> = LazyLock::new(bootstrap_policy);

/// The built-in defaults of a real cluster (plugin/pkg/auth/authorizer/rbac/bootstrappolicy),
/// always present in addition to the stored objects. Only the ones requests of ordinary users
/// depend on:
///
/// - `system:discovery`, bound to `system:authenticated`: `get` on `/api`, `/api/*`, `/apis`,
///   `/apis/*`, `/version`, `/version/`, `/openapi`, `/openapi/*`, `/healthz`, `/livez`, `/readyz`.
/// - `system:basic-user`, bound to `system:authenticated`: `create` `selfsubjectaccessreviews`
///   and `selfsubjectrulesreviews` (`authorization.k8s.io`) and `selfsubjectreviews`
///   (`authentication.k8s.io`, what `kubectl auth whoami` creates).
/// - `system:public-info-viewer`, bound to `system:authenticated` and `system:unauthenticated`:
///   `get` on `/healthz`, `/livez`, `/readyz`, `/version`, `/version/`.
/// - `cluster-admin` (everything), bound to `system:masters`, so bindings of other subjects to it
///   work as on a real cluster. A stored ClusterRole of the same name takes precedence.
fn bootstrap_policy() -> BootstrapPolicy {
    let cluster_roles = vec![
        json!({
            "metadata": {"name": "cluster-admin"},
            "rules": [
                {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
                {"nonResourceURLs": ["*"], "verbs": ["*"]},
            ],
        }),
        json!({
            "metadata": {"name": "system:discovery"},
            "rules": [{
                "nonResourceURLs": [
                    "/livez", "/readyz", "/healthz", "/version", "/version/",
                    "/openapi", "/openapi/*", "/api", "/api/*", "/apis", "/apis/*",
                ],
                "verbs": ["get"],
            }],
        }),
        json!({
            "metadata": {"name": "system:basic-user"},
            "rules": [
                {
                    "apiGroups": ["authentication.k8s.io"],
                    "resources": ["selfsubjectreviews"],
                    "verbs": ["create"],
                },
                {
                    "apiGroups": ["authorization.k8s.io"],
                    "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                    "verbs": ["create"],
                },
            ],
        }),
        json!({
            "metadata": {"name": "system:public-info-viewer"},
            "rules": [{
                "nonResourceURLs": ["/livez", "/readyz", "/healthz", "/version", "/version/"],
                "verbs": ["get"],
            }],
        }),
    ];
    let binding = |role: &str, groups: &[&str]| {
        let subjects: Vec<Value> = groups
            .iter()
            .map(|group| json!({"apiGroup": RBAC_GROUP, "kind": "Group", "name": group}))
            .collect();
        json!({
            "metadata": {"name": role},
            "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": role},
            "subjects": subjects,
        })
    };
    let cluster_role_bindings = vec![
        binding("cluster-admin", &[PRIVILEGED_GROUP]),
        binding("system:discovery", &[ALL_AUTHENTICATED]),
        binding("system:basic-user", &[ALL_AUTHENTICATED]),
        binding(
            "system:public-info-viewer",
            &[ALL_AUTHENTICATED, ALL_UNAUTHENTICATED],
        ),
    ];
    BootstrapPolicy {
        cluster_roles,
        cluster_role_bindings,
    }
}

/// One rule of a Role or ClusterRole (rbac/v1 PolicyRule).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct PolicyRule {
    verbs: Vec<String>,
    api_groups: Vec<String>,
    resources: Vec<String>,
    resource_names: Vec<String>,
    non_resource_urls: Vec<String>,
}

impl PolicyRule {
    fn from_json(rule: &Value) -> PolicyRule {
        PolicyRule {
            verbs: strings_at(rule, "verbs"),
            api_groups: strings_at(rule, "apiGroups"),
            resources: strings_at(rule, "resources"),
            resource_names: strings_at(rule, "resourceNames"),
            non_resource_urls: strings_at(rule, "nonResourceURLs"),
        }
    }

    /// rbac.RuleAllows.
    fn allows(&self, attributes: &Attributes) -> bool {
        if !self.verb_matches(&attributes.verb) {
            return false;
        }
        if attributes.resource_request {
            let combined = if attributes.subresource.is_empty() {
                attributes.resource.clone()
            } else {
                format!("{}/{}", attributes.resource, attributes.subresource)
            };
            self.api_group_matches(&attributes.api_group)
                && self.resource_matches(&combined, &attributes.subresource)
                && self.resource_name_matches(&attributes.name)
        } else {
            self.non_resource_url_matches(&attributes.path)
        }
    }

    fn verb_matches(&self, verb: &str) -> bool {
        self.verbs.iter().any(|v| v == "*" || v == verb)
    }

    fn api_group_matches(&self, group: &str) -> bool {
        self.api_groups.iter().any(|g| g == "*" || g == group)
    }

    /// `*`, an exact `resource` or `resource/subresource`, or `*/subresource`. A rule for
    /// `resource` does not cover its subresources.
    fn resource_matches(&self, combined: &str, subresource: &str) -> bool {
        self.resources.iter().any(|r| {
            r == "*"
                || r == combined
                || (!subresource.is_empty() && r.strip_prefix("*/") == Some(subresource))
        })
    }

    /// No resourceNames allows every name (and no name); otherwise the request must name one
    /// of them, so requests without a name (list, watch, create, deletecollection) are refused.
    fn resource_name_matches(&self, name: &str) -> bool {
        self.resource_names.is_empty() || self.resource_names.iter().any(|n| n == name)
    }

    /// `*`, an exact path, or a prefix ending in `*` (`/apis/*` matches `/apis/apps/v1`).
    fn non_resource_url_matches(&self, path: &str) -> bool {
        self.non_resource_urls.iter().any(|url| {
            url == "*"
                || url == path
                || (url.ends_with('*') && path.starts_with(url.trim_end_matches('*')))
        })
    }
}

/// Looks up the role a binding refers to.
struct Resolver<'a> {
    roles: &'a [Value],
    cluster_roles: &'a [Value],
    bootstrap_cluster_roles: &'a [Value],
}

impl Resolver<'_> {
    /// GetRoleReferenceRules: the rules of the binding's `roleRef`; a Role is looked up in the
    /// binding's namespace (`""` for a ClusterRoleBinding, where no Role can be found). The error
    /// is the message kube-apiserver's listers give.
    fn role_ref_rules(&self, binding: &Value, namespace: &str) -> Result<Vec<PolicyRule>, String> {
        let kind = str_at(binding, &["roleRef", "kind"]);
        let name = str_at(binding, &["roleRef", "name"]);
        let role = match kind {
            "Role" => self
                .roles
                .iter()
                .find(|role| {
                    !namespace.is_empty()
                        && str_at(role, &["metadata", "namespace"]) == namespace
                        && str_at(role, &["metadata", "name"]) == name
                })
                .ok_or_else(|| not_found("role", name))?,
            "ClusterRole" => self
                .cluster_roles
                .iter()
                .chain(self.bootstrap_cluster_roles)
                .find(|role| str_at(role, &["metadata", "name"]) == name)
                .ok_or_else(|| not_found("clusterrole", name))?,
            _ => {
                return Err(format!(
                    "unsupported role reference kind: {}",
                    go_quote(kind)
                ));
            }
        };
        Ok(role
            .get("rules")
            .and_then(Value::as_array)
            .map(|rules| rules.iter().map(PolicyRule::from_json).collect())
            .unwrap_or_default())
    }
}

/// apierrors.NewNotFound(rbacv1.Resource(resource), name).Error().
fn not_found(resource: &str, name: &str) -> String {
    format!("{resource}.{RBAC_GROUP} {} not found", go_quote(name))
}

/// Whether any subject of the binding is the user (appliesTo). `namespace` is the binding's
/// namespace, `""` for a ClusterRoleBinding.
fn applies_to(user: &User, binding: &Value, namespace: &str) -> bool {
    binding
        .get("subjects")
        .and_then(Value::as_array)
        .is_some_and(|subjects| {
            subjects
                .iter()
                .any(|subject| applies_to_user(user, subject, namespace))
        })
}

/// appliesToUser: a User by name, a Group by membership, a ServiceAccount by
/// `system:serviceaccount:<ns>:<name>` where an empty subject namespace means the binding's.
fn applies_to_user(user: &User, subject: &Value, namespace: &str) -> bool {
    let name = str_at(subject, &["name"]);
    match str_at(subject, &["kind"]) {
        "User" => user.name == name,
        "Group" => user.in_group(name),
        "ServiceAccount" => {
            let subject_namespace = str_at(subject, &["namespace"]);
            let sa_namespace = if subject_namespace.is_empty() {
                namespace
            } else {
                subject_namespace
            };
            !sa_namespace.is_empty()
                && user
                    .name
                    .strip_prefix(SERVICE_ACCOUNT_USERNAME_PREFIX)
                    .and_then(|rest| rest.strip_prefix(sa_namespace))
                    .and_then(|rest| rest.strip_prefix(':'))
                    == Some(name)
        }
        _ => false,
    }
}

/// utilerrors.NewAggregate(errors).Error(): one message as is, several deduplicated as `[a, b]`.
fn aggregate(errors: &[String]) -> String {
    let mut seen: Vec<&str> = Vec::new();
    for error in errors {
        if !seen.contains(&error.as_str()) {
            seen.push(error);
        }
    }
    match seen.as_slice() {
        [only] => (*only).to_string(),
        several => format!("[{}]", several.join(", ")),
    }
}

/// The string at a path of object keys, `""` when absent or not a string.
fn str_at<'a>(value: &'a Value, path: &[&str]) -> &'a str {
    path.iter()
        .try_fold(value, |current, key| current.get(key))
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// The strings of an array field, ignoring non-string items; empty when absent.
fn strings_at(value: &Value, key: &str) -> Vec<String> {
    value
        .get(key)
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str, groups: &[&str]) -> User {
        User {
            name: name.to_string(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
        }
    }

    /// A resource request; `resource` may be `plural/subresource`.
    fn req(verb: &str, group: &str, resource: &str, namespace: &str, name: &str) -> Attributes {
        let (resource, subresource) = resource.split_once('/').unwrap_or((resource, ""));
        Attributes {
            verb: verb.to_string(),
            api_group: group.to_string(),
            resource: resource.to_string(),
            subresource: subresource.to_string(),
            namespace: namespace.to_string(),
            name: name.to_string(),
            resource_request: true,
            ..Attributes::default()
        }
    }

    fn path(verb: &str, path: &str) -> Attributes {
        Attributes {
            verb: verb.to_string(),
            path: path.to_string(),
            ..Attributes::default()
        }
    }

    fn role(namespace: &str, name: &str, rules: Value) -> Value {
        json!({"metadata": {"namespace": namespace, "name": name}, "rules": rules})
    }

    fn cluster_role(name: &str, rules: Value) -> Value {
        json!({"metadata": {"name": name}, "rules": rules})
    }

    fn role_binding(namespace: &str, kind: &str, role: &str, subjects: Value) -> Value {
        json!({
            "metadata": {"namespace": namespace, "name": format!("{role}-binding")},
            "roleRef": {"apiGroup": RBAC_GROUP, "kind": kind, "name": role},
            "subjects": subjects,
        })
    }

    fn cluster_role_binding(role: &str, subjects: Value) -> Value {
        json!({
            "metadata": {"name": format!("{role}-binding")},
            "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": role},
            "subjects": subjects,
        })
    }

    fn sa_subject(namespace: &str, name: &str) -> Value {
        json!({"kind": "ServiceAccount", "namespace": namespace, "name": name})
    }

    /// Stored RBAC objects, in the order of `authorize`'s parameters.
    #[derive(Default)]
    struct Policy {
        roles: Vec<Value>,
        role_bindings: Vec<Value>,
        cluster_roles: Vec<Value>,
        cluster_role_bindings: Vec<Value>,
    }

    impl Policy {
        fn allows(&self, user: &User, attributes: &Attributes) -> bool {
            let decision = authorize(
                user,
                attributes,
                &self.roles,
                &self.role_bindings,
                &self.cluster_roles,
                &self.cluster_role_bindings,
            );
            decision == Decision::Allow
        }

        fn reason(&self, user: &User, attributes: &Attributes) -> (Decision, String) {
            authorize_with_reason(
                user,
                attributes,
                &self.roles,
                &self.role_bindings,
                &self.cluster_roles,
                &self.cluster_role_bindings,
            )
        }
    }

    /// A Role `r` in `ns` with `rules`, bound to service account `ns/sa`.
    fn sa_policy(rules: Value) -> Policy {
        Policy {
            roles: vec![role("ns", "r", rules)],
            role_bindings: vec![role_binding(
                "ns",
                "Role",
                "r",
                json!([sa_subject("ns", "sa")]),
            )],
            ..Policy::default()
        }
    }

    fn sa() -> User {
        User::service_account("ns", "sa")
    }

    #[test]
    fn service_account_and_admin_identities() {
        let sa = sa();
        assert_eq!(sa.name, "system:serviceaccount:ns:sa");
        let groups = [
            "system:serviceaccounts",
            "system:serviceaccounts:ns",
            "system:authenticated",
        ];
        assert_eq!(sa.groups, groups);
        let admin = User::admin();
        assert_eq!(admin.groups, ["system:masters", "system:authenticated"]);
    }

    #[test]
    fn admin_is_allowed_everything_without_any_rules() {
        // Even with the bootstrap cluster-admin role replaced by an empty one.
        let policy = Policy {
            cluster_roles: vec![cluster_role("cluster-admin", json!([]))],
            ..Policy::default()
        };
        let admin = User::admin();
        for attributes in [
            req("delete", "", "namespaces", "", "kube-system"),
            req("list", "stampede.dev", "loadtests", "", ""),
            req("patch", "stampede.dev", "loadtests/status", "ns", "t"),
            req("impersonate", "", "users", "", "someone"),
            path("get", "/metrics"),
            path("post", "/anything"),
        ] {
            assert!(policy.allows(&admin, &attributes), "{attributes:?}");
        }
        // The same name outside system:masters gets nothing beyond the defaults.
        let plain = user("kubernetes-admin", &["system:authenticated"]);
        assert!(!policy.allows(&plain, &req("delete", "", "namespaces", "", "kube-system")));
        assert!(!policy.allows(&plain, &path("get", "/metrics")));
    }

    #[test]
    fn role_binding_allows_only_in_its_namespace() {
        let policy = sa_policy(json!([
            {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]},
        ]));
        let sa = sa();
        assert!(policy.allows(&sa, &req("get", "", "configmaps", "ns", "x")));
        assert!(!policy.allows(&sa, &req("get", "", "configmaps", "other", "x")));
        // Cluster scope / all namespaces never consult RoleBindings.
        assert!(!policy.allows(&sa, &req("get", "", "configmaps", "", "x")));
        // Other verbs, groups and resources are not covered.
        assert!(!policy.allows(&sa, &req("update", "", "configmaps", "ns", "x")));
        assert!(!policy.allows(&sa, &req("get", "apps", "configmaps", "ns", "x")));
        assert!(!policy.allows(&sa, &req("get", "", "secrets", "ns", "x")));
        // The same-named service account of another namespace is not the subject.
        let stranger = User::service_account("other", "sa");
        assert!(!policy.allows(&stranger, &req("get", "", "configmaps", "ns", "x")));
    }

    #[test]
    fn role_binding_uses_the_role_of_its_own_namespace() {
        let everything = json!([{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]);
        let policy = Policy {
            roles: vec![role("other", "r", everything)],
            role_bindings: vec![role_binding(
                "ns",
                "Role",
                "r",
                json!([sa_subject("ns", "sa")]),
            )],
            ..Policy::default()
        };
        assert!(!policy.allows(&sa(), &req("get", "", "configmaps", "ns", "x")));
    }

    #[test]
    fn wildcards_for_verbs_groups_and_resources() {
        let policy = sa_policy(json!([{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]));
        for attributes in [
            req("deletecollection", "apps", "deployments", "ns", ""),
            req("create", "", "pods", "ns", ""),
            req("get", "", "pods/log", "ns", "p"),
        ] {
            assert!(policy.allows(&sa(), &attributes), "{attributes:?}");
        }
    }

    #[test]
    fn resource_names_restrict_to_the_named_objects() {
        let policy = sa_policy(json!([{
            "apiGroups": [""],
            "resources": ["configmaps"],
            "resourceNames": ["allowed"],
            "verbs": ["get", "list", "update", "create"],
        }]));
        let sa = sa();
        assert!(policy.allows(&sa, &req("get", "", "configmaps", "ns", "allowed")));
        assert!(policy.allows(&sa, &req("update", "", "configmaps", "ns", "allowed")));
        assert!(!policy.allows(&sa, &req("get", "", "configmaps", "ns", "another")));
        // No name: list and create are refused by a rule with resourceNames.
        assert!(!policy.allows(&sa, &req("list", "", "configmaps", "ns", "")));
        assert!(!policy.allows(&sa, &req("create", "", "configmaps", "ns", "")));
        // A list narrowed by `metadata.name=allowed` carries the name.
        assert!(policy.allows(&sa, &req("list", "", "configmaps", "ns", "allowed")));
    }

    #[test]
    fn subresources_must_be_listed() {
        let sa = sa();
        let status = req("patch", "stampede.dev", "loadtests/status", "ns", "t");
        let main = req("patch", "stampede.dev", "loadtests", "ns", "t");
        let scale = req("patch", "stampede.dev", "loadtests/scale", "ns", "t");

        let plain = sa_policy(json!([
            {"apiGroups": ["stampede.dev"], "resources": ["loadtests"], "verbs": ["*"]},
        ]));
        assert!(plain.allows(&sa, &main));
        assert!(!plain.allows(&sa, &status));

        let with_status = sa_policy(json!([
            {"apiGroups": ["stampede.dev"], "resources": ["loadtests/status"], "verbs": ["patch"]},
        ]));
        assert!(with_status.allows(&sa, &status));
        assert!(!with_status.allows(&sa, &main));
        assert!(!with_status.allows(&sa, &scale));
    }

    #[test]
    fn star_slash_subresource_matches_that_subresource_of_every_resource() {
        let policy = sa_policy(json!([
            {"apiGroups": ["*"], "resources": ["*/status"], "verbs": ["get", "patch"]},
        ]));
        let sa = sa();
        assert!(policy.allows(
            &sa,
            &req("patch", "stampede.dev", "loadtests/status", "ns", "t")
        ));
        assert!(policy.allows(&sa, &req("get", "apps", "deployments/status", "ns", "d")));
        assert!(!policy.allows(&sa, &req("get", "stampede.dev", "loadtests", "ns", "t")));
        assert!(!policy.allows(&sa, &req("get", "apps", "deployments/scale", "ns", "d")));
        // Neither a prefix pattern nor a match for requests without a subresource.
        for pattern in ["*/stat", "*/"] {
            let odd =
                sa_policy(json!([{"apiGroups": ["*"], "resources": [pattern], "verbs": ["*"]}]));
            assert!(!odd.allows(&sa, &req("get", "apps", "deployments/status", "ns", "d")));
            assert!(!odd.allows(&sa, &req("get", "apps", "deployments", "ns", "d")));
        }
    }

    #[test]
    fn role_binding_to_cluster_role_is_limited_to_the_binding_namespace() {
        let policy = Policy {
            cluster_roles: vec![cluster_role(
                "reader",
                json!([{"apiGroups": [""], "resources": ["pods", "namespaces"], "verbs": ["list"]}]),
            )],
            role_bindings: vec![role_binding(
                "ns",
                "ClusterRole",
                "reader",
                json!([sa_subject("ns", "sa")]),
            )],
            ..Policy::default()
        };
        let sa = sa();
        assert!(policy.allows(&sa, &req("list", "", "pods", "ns", "")));
        assert!(!policy.allows(&sa, &req("list", "", "pods", "other", "")));
        assert!(!policy.allows(&sa, &req("list", "", "pods", "", "")));
        assert!(!policy.allows(&sa, &req("list", "", "namespaces", "", "")));
    }

    #[test]
    fn cluster_role_binding_grants_everywhere_including_cluster_scoped() {
        let rules = json!([
            {"apiGroups": [""], "resources": ["pods", "namespaces", "nodes"], "verbs": ["get", "list"]},
        ]);
        let policy = Policy {
            cluster_roles: vec![cluster_role("reader", rules)],
            cluster_role_bindings: vec![cluster_role_binding(
                "reader",
                json!([sa_subject("ns", "sa")]),
            )],
            ..Policy::default()
        };
        let sa = sa();
        for attributes in [
            req("list", "", "pods", "ns", ""),
            req("get", "", "pods", "elsewhere", "p"),
            req("list", "", "pods", "", ""),
            req("list", "", "namespaces", "", ""),
            req("get", "", "nodes", "", "node-1"),
        ] {
            assert!(policy.allows(&sa, &attributes), "{attributes:?}");
        }
        assert!(!policy.allows(&sa, &req("delete", "", "nodes", "", "node-1")));
        assert!(!policy.allows(
            &User::service_account("ns", "other"),
            &req("list", "", "pods", "", "")
        ));
    }

    #[test]
    fn group_subjects_match_members_only() {
        let rules = json!([{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"]}]);
        let policy = Policy {
            roles: vec![role("ns", "r", rules.clone())],
            role_bindings: vec![role_binding(
                "ns",
                "Role",
                "r",
                json!([{"kind": "Group", "name": "system:serviceaccounts:ns"}]),
            )],
            cluster_roles: vec![cluster_role("c", rules)],
            cluster_role_bindings: vec![cluster_role_binding(
                "c",
                json!([{"kind": "Group", "name": "team"}]),
            )],
        };
        let in_ns = req("list", "", "configmaps", "ns", "");
        let everywhere = req("list", "", "configmaps", "", "");
        assert!(policy.allows(&User::service_account("ns", "any"), &in_ns));
        assert!(!policy.allows(&User::service_account("ns", "any"), &everywhere));
        assert!(!policy.allows(&User::service_account("other", "any"), &in_ns));
        assert!(policy.allows(&user("alice", &["team"]), &everywhere));
        // A user named like the group is not a member.
        assert!(!policy.allows(&user("team", &[]), &everywhere));
    }

    #[test]
    fn user_subjects_match_by_name() {
        let policy = Policy {
            cluster_roles: vec![cluster_role(
                "c",
                json!([{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]),
            )],
            cluster_role_bindings: vec![cluster_role_binding(
                "c",
                json!([{"kind": "User", "name": "alice"}]),
            )],
            ..Policy::default()
        };
        let get = req("get", "", "configmaps", "ns", "x");
        assert!(policy.allows(&user("alice", &[]), &get));
        assert!(!policy.allows(&user("bob", &["alice"]), &get));
    }

    #[test]
    fn service_account_subject_namespace_defaults_to_the_role_binding_namespace() {
        let rules = json!([{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]);
        let unqualified = json!([{"kind": "ServiceAccount", "name": "sa"}]);
        let policy = Policy {
            roles: vec![role("ns", "r", rules.clone())],
            role_bindings: vec![role_binding("ns", "Role", "r", unqualified.clone())],
            ..Policy::default()
        };
        let get = req("get", "", "configmaps", "ns", "x");
        assert!(policy.allows(&User::service_account("ns", "sa"), &get));
        assert!(!policy.allows(&User::service_account("other", "sa"), &get));
        assert!(!policy.allows(&User::service_account("ns", "sa2"), &get));

        // A ClusterRoleBinding has no namespace to default to: the subject matches no one.
        let cluster = Policy {
            cluster_roles: vec![cluster_role("c", rules)],
            cluster_role_bindings: vec![cluster_role_binding("c", unqualified)],
            ..Policy::default()
        };
        assert!(!cluster.allows(&User::service_account("ns", "sa"), &get));
        assert!(!cluster.allows(&user("system:serviceaccount::sa", &[]), &get));
    }

    #[test]
    fn service_account_subject_is_not_fooled_by_similar_names() {
        let policy = sa_policy(json!([
            {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]},
        ]));
        let get = req("get", "", "configmaps", "ns", "x");
        for name in [
            "system:serviceaccount:ns:sa2",
            "system:serviceaccount:ns:s",
            "system:serviceaccount:nsx:sa",
            "system:serviceaccount:ns",
            "ns:sa",
        ] {
            assert!(!policy.allows(&user(name, &[]), &get), "{name}");
        }
        assert!(policy.allows(&user("system:serviceaccount:ns:sa", &[]), &get));
    }

    #[test]
    fn discovery_and_self_reviews_are_allowed_for_every_authenticated_user() {
        let policy = Policy::default();
        let someone = user("someone", &["system:authenticated"]);
        for p in [
            "/api",
            "/api/v1",
            "/apis",
            "/apis/stampede.dev/v1alpha1",
            "/version",
            "/version/",
            "/openapi/v2",
            "/openapi/v3/apis/apps/v1",
            "/healthz",
            "/livez",
            "/readyz",
        ] {
            assert!(policy.allows(&someone, &path("get", p)), "{p}");
        }
        for attributes in [
            req(
                "create",
                "authorization.k8s.io",
                "selfsubjectaccessreviews",
                "",
                "",
            ),
            req(
                "create",
                "authorization.k8s.io",
                "selfsubjectrulesreviews",
                "",
                "",
            ),
            req(
                "create",
                "authentication.k8s.io",
                "selfsubjectreviews",
                "",
                "",
            ),
        ] {
            assert!(policy.allows(&someone, &attributes), "{attributes:?}");
        }
        // Nothing more: other verbs, other paths, other reviews.
        assert!(!policy.allows(&someone, &path("post", "/api")));
        assert!(!policy.allows(&someone, &path("get", "/metrics")));
        assert!(!policy.allows(&someone, &path("get", "/apisx")));
        let sar = req(
            "create",
            "authorization.k8s.io",
            "subjectaccessreviews",
            "",
            "",
        );
        assert!(!policy.allows(&someone, &sar));
        // Without system:authenticated, only the public info paths.
        let anonymous = user("system:anonymous", &["system:unauthenticated"]);
        assert!(policy.allows(&anonymous, &path("get", "/healthz")));
        assert!(policy.allows(&anonymous, &path("get", "/version")));
        assert!(!policy.allows(&anonymous, &path("get", "/apis")));
        assert!(!policy.allows(&user("nobody", &[]), &path("get", "/healthz")));
    }

    #[test]
    fn built_in_cluster_admin_can_be_bound() {
        let policy = Policy {
            role_bindings: vec![role_binding(
                "ns",
                "ClusterRole",
                "cluster-admin",
                json!([sa_subject("ns", "sa")]),
            )],
            ..Policy::default()
        };
        let sa = sa();
        assert!(policy.allows(&sa, &req("delete", "apps", "deployments", "ns", "d")));
        assert!(!policy.allows(&sa, &req("delete", "apps", "deployments", "other", "d")));
        // A stored ClusterRole of that name replaces the built-in one.
        let replaced = Policy {
            cluster_roles: vec![cluster_role("cluster-admin", json!([]))],
            ..policy
        };
        assert!(!replaced.allows(&sa, &req("delete", "apps", "deployments", "ns", "d")));
    }

    #[test]
    fn non_resource_urls_with_wildcard_suffix() {
        let policy = Policy {
            cluster_roles: vec![cluster_role(
                "paths",
                json!([{"nonResourceURLs": ["/metrics", "/logs/*"], "verbs": ["get"]}]),
            )],
            cluster_role_bindings: vec![cluster_role_binding(
                "paths",
                json!([{"kind": "User", "name": "u"}]),
            )],
            ..Policy::default()
        };
        let u = user("u", &[]);
        assert!(policy.allows(&u, &path("get", "/metrics")));
        assert!(policy.allows(&u, &path("get", "/logs/kube.log")));
        assert!(policy.allows(&u, &path("get", "/logs/")));
        assert!(!policy.allows(&u, &path("get", "/logs")));
        assert!(!policy.allows(&u, &path("get", "/x/logs/kube.log")));
        assert!(!policy.allows(&u, &path("get", "/metrics/extra")));
        assert!(!policy.allows(&u, &path("post", "/metrics")));
        // A non-resource rule grants no resource access.
        assert!(!policy.allows(&u, &req("get", "", "metrics", "", "")));

        let everything = Policy {
            cluster_roles: vec![cluster_role(
                "paths",
                json!([{"nonResourceURLs": ["*"], "verbs": ["*"]}]),
            )],
            ..policy
        };
        assert!(everything.allows(&u, &path("put", "/any/where")));
    }

    #[test]
    fn non_resource_rules_through_role_bindings_grant_nothing() {
        let policy = Policy {
            cluster_roles: vec![cluster_role(
                "paths",
                json!([{"nonResourceURLs": ["/metrics"], "verbs": ["get"]}]),
            )],
            role_bindings: vec![role_binding(
                "ns",
                "ClusterRole",
                "paths",
                json!([{"kind": "User", "name": "u"}]),
            )],
            ..Policy::default()
        };
        assert!(!policy.allows(&user("u", &[]), &path("get", "/metrics")));
    }

    #[test]
    fn missing_or_unusable_role_refs_grant_nothing_and_give_the_reason() {
        let sa = sa();
        let get = req("get", "", "configmaps", "ns", "x");
        let subjects = json!([sa_subject("ns", "sa")]);
        let missing_role = Policy {
            role_bindings: vec![role_binding("ns", "Role", "gone", subjects.clone())],
            ..Policy::default()
        };
        assert_eq!(
            missing_role.reason(&sa, &get),
            (
                Decision::Deny,
                r#"RBAC: role.rbac.authorization.k8s.io "gone" not found"#.to_string()
            )
        );

        let everything = json!([{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]);
        let several = Policy {
            role_bindings: vec![
                role_binding("ns", "Role", "gone", subjects.clone()),
                role_binding("ns", "Role", "gone", subjects.clone()),
            ],
            cluster_role_bindings: vec![
                cluster_role_binding("absent", subjects.clone()),
                // A ClusterRoleBinding can't reach a Role, not even one without a namespace.
                json!({"roleRef": {"kind": "Role", "name": "r"}, "subjects": subjects}),
                json!({"roleRef": {"kind": "Other", "name": "r"}, "subjects": subjects}),
            ],
            roles: vec![role("", "r", everything)],
            ..Policy::default()
        };
        let expected = concat!(
            r#"RBAC: [clusterrole.rbac.authorization.k8s.io "absent" not found, "#,
            r#"role.rbac.authorization.k8s.io "r" not found, "#,
            r#"unsupported role reference kind: "Other", "#,
            r#"role.rbac.authorization.k8s.io "gone" not found]"#
        );
        assert_eq!(
            several.reason(&sa, &get),
            (Decision::Deny, expected.to_string())
        );

        // Bindings of others contribute no errors; allowed requests have no reason.
        assert_eq!(
            missing_role.reason(&user("other", &[]), &get),
            (Decision::Deny, String::new())
        );
        assert_eq!(
            missing_role.reason(&User::admin(), &get),
            (Decision::Allow, String::new())
        );
    }

    #[test]
    fn malformed_objects_grant_nothing_and_do_not_panic() {
        let sa = sa();
        let subjects = json!([sa_subject("ns", "sa")]);
        let policy = Policy {
            roles: vec![
                json!(null),
                json!({"metadata": {"namespace": "ns", "name": "r"}, "rules": "all"}),
                json!({"metadata": {"namespace": "ns", "name": "r2"}, "rules": [
                    null, 3, {"verbs": "get"}, {"verbs": ["*"], "apiGroups": [1], "resources": [{}]},
                ]}),
            ],
            role_bindings: vec![
                json!(42),
                json!({"metadata": {"namespace": "ns"}, "roleRef": "r", "subjects": subjects}),
                json!({"metadata": {"namespace": "ns"}, "roleRef": {"kind": "Role", "name": "r"},
                       "subjects": {"kind": "User"}}),
                json!({"metadata": {"namespace": "ns"}, "roleRef": {"kind": "Role", "name": "r"},
                       "subjects": subjects}),
                json!({"metadata": {"namespace": "ns"}, "roleRef": {"kind": "Role", "name": "r2"},
                       "subjects": [null, {"kind": 7}, sa_subject("ns", "sa")]}),
            ],
            cluster_roles: vec![json!([])],
            cluster_role_bindings: vec![
                json!("x"),
                json!({"subjects": [{"kind": "Group", "name": "system:authenticated"}]}),
            ],
        };
        assert!(!policy.allows(&sa, &req("get", "", "configmaps", "ns", "x")));
        assert!(policy.allows(&sa, &path("get", "/api")));

        // A RoleBinding without a namespace is never used, not even for cluster-scoped requests.
        let no_namespace = Policy {
            role_bindings: vec![json!({
                "roleRef": {"kind": "ClusterRole", "name": "cluster-admin"},
                "subjects": subjects,
            })],
            ..Policy::default()
        };
        assert!(!no_namespace.allows(&sa, &req("list", "", "namespaces", "", "")));
    }

    #[test]
    fn forbidden_messages_match_kube_apiserver() {
        let u = user("u", &["system:authenticated"]);
        assert_eq!(
            forbidden_message(&sa(), &req("get", "", "configmaps", "ns", "x")),
            r#"configmaps "x" is forbidden: User "system:serviceaccount:ns:sa" cannot get resource "configmaps" in API group "" in the namespace "ns""#
        );
        assert_eq!(
            forbidden_message(&u, &req("list", "", "configmaps", "ns", "")),
            r#"configmaps is forbidden: User "u" cannot list resource "configmaps" in API group "" in the namespace "ns""#
        );
        assert_eq!(
            forbidden_message(
                &u,
                &req("patch", "stampede.dev", "loadtests/status", "ns", "t")
            ),
            r#"loadtests.stampede.dev "t" is forbidden: User "u" cannot patch resource "loadtests/status" in API group "stampede.dev" in the namespace "ns""#
        );
        assert_eq!(
            forbidden_message(&u, &req("list", "", "namespaces", "", "")),
            r#"namespaces is forbidden: User "u" cannot list resource "namespaces" in API group "" at the cluster scope"#
        );
        assert_eq!(
            forbidden_message(&u, &req("get", "", "nodes", "", "node-1")),
            r#"nodes "node-1" is forbidden: User "u" cannot get resource "nodes" in API group "" at the cluster scope"#
        );
        assert_eq!(
            forbidden_message(&u, &path("get", "/metrics")),
            r#"forbidden: User "u" cannot get path "/metrics""#
        );
    }

    #[test]
    fn forbidden_message_with_reason_appends_it() {
        let attributes = req("create", "", "services", "ns", "");
        let reason = r#"RBAC: role.rbac.authorization.k8s.io "gone" not found"#;
        assert_eq!(
            forbidden_message_with_reason(&sa(), &attributes, reason),
            r#"services is forbidden: User "system:serviceaccount:ns:sa" cannot create resource "services" in API group "" in the namespace "ns": RBAC: role.rbac.authorization.k8s.io "gone" not found"#
        );
        assert_eq!(
            forbidden_message_with_reason(&sa(), &attributes, ""),
            forbidden_message(&sa(), &attributes)
        );
    }

    #[test]
    fn messages_quote_like_go() {
        assert_eq!(go_quote(""), r#""""#);
        assert_eq!(go_quote(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(go_quote("l1\nl2\t\u{1}\u{7f}"), r#""l1\nl2\t\x01\x7f""#);
        assert_eq!(go_quote("é ü 日本"), "\"é ü 日本\"");
        assert_eq!(
            go_quote("\u{a0}\u{200b}\u{feff}"),
            r#""\u00a0\u200b\ufeff""#
        );
        assert_eq!(go_quote("\u{f0000}"), r#""\U000f0000""#);
        assert_eq!(
            forbidden_message(&user("a\"b", &[]), &path("get", "/x")),
            r#"forbidden: User "a\"b" cannot get path "/x""#
        );
    }
}
