//! Field paths such as `spec.scenarios.spike.stages[1].duration`, built while validating and
//! used both to print problems and to find the manifest line a problem points at.

use std::fmt;

/// One step of a field path: a map key or a list index.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Segment {
    /// A mapping key.
    Key(String),
    /// A sequence index.
    Index(usize),
}

/// A path into a manifest, printed the way `kubectl explain` users read fields.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FieldPath {
    segments: Vec<Segment>,
}

impl FieldPath {
    /// The empty path (the document root).
    pub fn root() -> Self {
        FieldPath::default()
    }

    /// A path made of plain keys, e.g. `FieldPath::keys(&["spec", "defaults"])`.
    pub fn keys(keys: &[&str]) -> Self {
        FieldPath {
            segments: keys
                .iter()
                .map(|k| Segment::Key((*k).to_string()))
                .collect(),
        }
    }

    /// This path extended by a key.
    pub fn key(&self, key: impl Into<String>) -> Self {
        let mut next = self.clone();
        next.segments.push(Segment::Key(key.into()));
        next
    }

    /// This path extended by a list index.
    pub fn index(&self, index: usize) -> Self {
        let mut next = self.clone();
        next.segments.push(Segment::Index(index));
        next
    }

    /// The segments, root first.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// Builds a path from segments.
    pub fn from_segments(segments: Vec<Segment>) -> Self {
        FieldPath { segments }
    }
}

fn is_plain_key(key: &str) -> bool {
    let mut chars = key.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (position, segment) in self.segments.iter().enumerate() {
            match segment {
                Segment::Key(key) if is_plain_key(key) => {
                    if position > 0 {
                        f.write_str(".")?;
                    }
                    f.write_str(key)?;
                }
                Segment::Key(key) => write!(f, "[{key:?}]")?,
                Segment::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_keys_indices_and_quoted_keys() {
        let path = FieldPath::keys(&["spec", "scenarios", "spike", "stages"])
            .index(1)
            .key("duration");
        assert_eq!(path.to_string(), "spec.scenarios.spike.stages[1].duration");
        let path = FieldPath::keys(&["spec", "thresholds"])
            .key("http_req_duration{name:login}")
            .index(0);
        assert_eq!(
            path.to_string(),
            r#"spec.thresholds["http_req_duration{name:login}"][0]"#
        );
        let path = FieldPath::keys(&["spec", "flows", "default"])
            .index(0)
            .key("checks")
            .key("login ok");
        assert_eq!(
            path.to_string(),
            r#"spec.flows.default[0].checks["login ok"]"#
        );
    }
}
