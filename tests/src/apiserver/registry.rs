//! The resource types the stand-in serves: the built-in kinds Stampede and kubectl use, and one
//! entry per served version of every CustomResourceDefinition created through it.

use serde_json::Value;

/// Where objects of a resource are stored, whatever version they are read in.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StorageId {
    /// API group ("" for the core group).
    pub group: String,
    /// Plural resource name.
    pub plural: String,
}

/// One additional printer column of a CRD (or of a built-in kind's table).
#[derive(Debug, Clone, PartialEq)]
pub struct PrinterColumn {
    /// Column header.
    pub name: String,
    /// OpenAPI type: string, integer, number, boolean, date.
    pub column_type: String,
    /// The JSONPath (Kubernetes style, without the leading `$`).
    pub json_path: String,
    /// 0 = shown by default; >0 only with `-o wide`.
    pub priority: i64,
    /// Column description.
    pub description: String,
    /// Column format (`int32`, `date-time`...), "" when none.
    pub format: String,
}

/// A resource type served at one group/version.
#[derive(Debug, Clone)]
pub struct ResourceType {
    /// API group ("" = core).
    pub group: String,
    /// Version.
    pub version: String,
    /// Plural name (URL segment).
    pub plural: String,
    /// Singular name.
    pub singular: String,
    /// Kind.
    pub kind: String,
    /// Whether objects live in namespaces.
    pub namespaced: bool,
    /// kubectl short names.
    pub short_names: Vec<String>,
    /// Categories (`kubectl get all`).
    pub categories: Vec<String>,
    /// Whether a `/status` subresource splits status writes from the rest.
    pub status_subresource: bool,
    /// Whether `metadata.generation` tracks spec changes.
    pub generation: bool,
    /// For custom resources: the version's `openAPIV3Schema`.
    pub schema: Option<Value>,
    /// For custom resources: the additional printer columns.
    pub printer_columns: Vec<PrinterColumn>,
    /// For custom resources: the owning CRD's name.
    pub crd: Option<String>,
    /// Fields a fieldSelector may use besides metadata.name / metadata.namespace.
    pub field_selectors: Vec<&'static str>,
}

impl ResourceType {
    /// The storage identity of this resource.
    pub fn storage(&self) -> StorageId {
        StorageId {
            group: self.group.clone(),
            plural: self.plural.clone(),
        }
    }

    /// `apiVersion` of objects served by this entry.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// Whether this is a custom resource.
    pub fn is_custom(&self) -> bool {
        self.crd.is_some()
    }
}

/// All served resource types.
#[derive(Debug, Clone)]
pub struct Registry {
    types: Vec<ResourceType>,
}

struct Builtin {
    group: &'static str,
    version: &'static str,
    plural: &'static str,
    kind: &'static str,
    namespaced: bool,
    short_names: &'static [&'static str],
    status: bool,
    generation: bool,
    field_selectors: &'static [&'static str],
}

const BUILTINS: &[Builtin] = &[
    Builtin {
        group: "",
        version: "v1",
        plural: "namespaces",
        kind: "Namespace",
        namespaced: false,
        short_names: &["ns"],
        status: true,
        generation: false,
        field_selectors: &["status.phase"],
    },
    Builtin {
        group: "",
        version: "v1",
        plural: "configmaps",
        kind: "ConfigMap",
        namespaced: true,
        short_names: &["cm"],
        status: false,
        generation: false,
        field_selectors: &[],
    },
    Builtin {
        group: "",
        version: "v1",
        plural: "secrets",
        kind: "Secret",
        namespaced: true,
        short_names: &[],
        status: false,
        generation: false,
        field_selectors: &["type"],
    },
    Builtin {
        group: "",
        version: "v1",
        plural: "serviceaccounts",
        kind: "ServiceAccount",
        namespaced: true,
        short_names: &["sa"],
        status: false,
        generation: false,
        field_selectors: &[],
    },
    Builtin {
        group: "",
        version: "v1",
        plural: "pods",
        kind: "Pod",
        namespaced: true,
        short_names: &["po"],
        status: true,
        generation: true,
        field_selectors: &[
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        ],
    },
    Builtin {
        group: "",
        version: "v1",
        plural: "events",
        kind: "Event",
        namespaced: true,
        short_names: &["ev"],
        status: false,
        generation: false,
        field_selectors: &[
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        ],
    },
    Builtin {
        group: "events.k8s.io",
        version: "v1",
        plural: "events",
        kind: "Event",
        namespaced: true,
        short_names: &["ev"],
        status: false,
        generation: false,
        field_selectors: &[
            "regarding.kind",
            "regarding.namespace",
            "regarding.name",
            "regarding.uid",
            "reason",
            "reportingController",
            "type",
        ],
    },
    // Stored only (no controllers): what a test's own objects (the chart's demo server) need.
    Builtin {
        group: "",
        version: "v1",
        plural: "services",
        kind: "Service",
        namespaced: true,
        short_names: &["svc"],
        status: true,
        generation: false,
        field_selectors: &["spec.clusterIP", "spec.type"],
    },
    Builtin {
        group: "apps",
        version: "v1",
        plural: "deployments",
        kind: "Deployment",
        namespaced: true,
        short_names: &["deploy"],
        status: true,
        generation: true,
        field_selectors: &[],
    },
    Builtin {
        group: "batch",
        version: "v1",
        plural: "jobs",
        kind: "Job",
        namespaced: true,
        short_names: &[],
        status: true,
        generation: true,
        field_selectors: &["status.successful"],
    },
    Builtin {
        group: "rbac.authorization.k8s.io",
        version: "v1",
        plural: "roles",
        kind: "Role",
        namespaced: true,
        short_names: &[],
        status: false,
        generation: false,
        field_selectors: &[],
    },
    Builtin {
        group: "rbac.authorization.k8s.io",
        version: "v1",
        plural: "rolebindings",
        kind: "RoleBinding",
        namespaced: true,
        short_names: &[],
        status: false,
        generation: false,
        field_selectors: &[],
    },
    Builtin {
        group: "rbac.authorization.k8s.io",
        version: "v1",
        plural: "clusterroles",
        kind: "ClusterRole",
        namespaced: false,
        short_names: &[],
        status: false,
        generation: false,
        field_selectors: &[],
    },
    Builtin {
        group: "rbac.authorization.k8s.io",
        version: "v1",
        plural: "clusterrolebindings",
        kind: "ClusterRoleBinding",
        namespaced: false,
        short_names: &[],
        status: false,
        generation: false,
        field_selectors: &[],
    },
    Builtin {
        group: "coordination.k8s.io",
        version: "v1",
        plural: "leases",
        kind: "Lease",
        namespaced: true,
        short_names: &[],
        status: false,
        generation: false,
        field_selectors: &[],
    },
    Builtin {
        group: "authorization.k8s.io",
        version: "v1",
        plural: "selfsubjectaccessreviews",
        kind: "SelfSubjectAccessReview",
        namespaced: false,
        short_names: &[],
        status: false,
        generation: false,
        field_selectors: &[],
    },
    Builtin {
        group: "apiextensions.k8s.io",
        version: "v1",
        plural: "customresourcedefinitions",
        kind: "CustomResourceDefinition",
        namespaced: false,
        short_names: &["crd", "crds"],
        status: true,
        generation: true,
        field_selectors: &[],
    },
];

impl Registry {
    /// The built-in kinds.
    pub fn builtin() -> Registry {
        let types = BUILTINS
            .iter()
            .map(|b| ResourceType {
                group: b.group.into(),
                version: b.version.into(),
                plural: b.plural.into(),
                singular: b.kind.to_lowercase(),
                kind: b.kind.into(),
                namespaced: b.namespaced,
                short_names: b.short_names.iter().map(|s| s.to_string()).collect(),
                categories: if ["pods", "jobs"].contains(&b.plural) {
                    vec!["all".into()]
                } else {
                    Vec::new()
                },
                status_subresource: b.status,
                generation: b.generation,
                schema: None,
                printer_columns: Vec::new(),
                crd: None,
                field_selectors: b.field_selectors.to_vec(),
            })
            .collect();
        Registry { types }
    }

    /// Every served type.
    pub fn types(&self) -> &[ResourceType] {
        &self.types
    }

    /// The type served at `group/version` under `plural`.
    pub fn find(&self, group: &str, version: &str, plural: &str) -> Option<&ResourceType> {
        self.types
            .iter()
            .find(|t| t.group == group && t.version == version && t.plural == plural)
    }

    /// Any served version of a stored resource (the first one listed).
    pub fn any_version(&self, storage: &StorageId) -> Option<&ResourceType> {
        self.types
            .iter()
            .find(|t| t.group == storage.group && t.plural == storage.plural)
    }

    /// The type of an `apiVersion` + `kind` pair.
    pub fn by_kind(&self, api_version: &str, kind: &str) -> Option<&ResourceType> {
        self.types
            .iter()
            .find(|t| t.api_version() == api_version && t.kind == kind)
    }

    /// Registers (or re-registers) the served versions of a CRD object; returns an error
    /// message when its names clash with another resource.
    pub fn register_crd(&mut self, crd: &Value) -> Result<(), String> {
        let name = crd
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let types = crd_types(crd, &name)?;
        if let Some(first) = types.first()
            && let Some(other) = self.types.iter().find(|t| {
                t.group == first.group
                    && t.plural == first.plural
                    && t.crd.as_deref() != Some(&name)
            })
        {
            return Err(format!(
                "{}.{} is already served by {}",
                other.plural,
                other.group,
                other.crd.as_deref().unwrap_or("a built-in resource")
            ));
        }
        self.types.retain(|t| t.crd.as_deref() != Some(&name));
        self.types.extend(types);
        Ok(())
    }

    /// Removes the types of the CRD called `name`.
    pub fn unregister_crd(&mut self, name: &str) {
        self.types.retain(|t| t.crd.as_deref() != Some(name));
    }
}

/// The served versions of a CRD as resource types.
fn crd_types(crd: &Value, crd_name: &str) -> Result<Vec<ResourceType>, String> {
    let spec = crd.get("spec").ok_or("spec: Required value")?;
    let text = |path: &str| {
        spec.pointer(path)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let strings = |path: &str| -> Vec<String> {
        spec.pointer(path)
            .and_then(Value::as_array)
            .map(|list| {
                list.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let (group, plural, kind) = (text("/group"), text("/names/plural"), text("/names/kind"));
    if group.is_empty() || plural.is_empty() || kind.is_empty() {
        return Err("spec.group, spec.names.plural and spec.names.kind are required".into());
    }
    if crd_name != format!("{plural}.{group}") {
        return Err(format!(
            "metadata.name: Invalid value: \"{crd_name}\": must be spec.names.plural+\".\"+spec.group"
        ));
    }
    let singular = match text("/names/singular") {
        s if s.is_empty() => kind.to_lowercase(),
        s => s,
    };
    let namespaced = text("/scope") != "Cluster";
    let versions = spec
        .get("versions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut types = Vec::new();
    for version in versions
        .iter()
        .filter(|v| v.get("served").and_then(Value::as_bool).unwrap_or(false))
    {
        let columns = version
            .get("additionalPrinterColumns")
            .and_then(Value::as_array)
            .map(|columns| columns.iter().map(printer_column).collect())
            .unwrap_or_default();
        types.push(ResourceType {
            group: group.clone(),
            version: version
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            plural: plural.clone(),
            singular: singular.clone(),
            kind: kind.clone(),
            namespaced,
            short_names: strings("/names/shortNames"),
            categories: strings("/names/categories"),
            status_subresource: version.pointer("/subresources/status").is_some(),
            generation: true,
            schema: version.pointer("/schema/openAPIV3Schema").cloned(),
            printer_columns: columns,
            crd: Some(crd_name.to_string()),
            field_selectors: Vec::new(),
        });
    }
    Ok(types)
}

fn printer_column(column: &Value) -> PrinterColumn {
    let text = |field: &str| {
        column
            .get(field)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    PrinterColumn {
        name: text("name"),
        column_type: text("type"),
        json_path: text("jsonPath"),
        priority: column.get("priority").and_then(Value::as_i64).unwrap_or(0),
        description: text("description"),
        format: text("format"),
    }
}
