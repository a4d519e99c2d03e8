//! The tags of one sample: k6's system tags that Stampede sets, plus custom tags.

/// Tags of a sample. System tags are fields (no allocation per sample for the common ones);
/// scenario, test and request tags come as `custom`.
#[derive(Debug, Clone, Default)]
pub struct SampleTags<'a> {
    /// `name`: the step name (or request `tags.name`).
    pub name: Option<&'a str>,
    /// `method`.
    pub method: Option<&'a str>,
    /// `status`: HTTP status, 0 on a network error.
    pub status: Option<u16>,
    /// `scenario`.
    pub scenario: Option<&'a str>,
    /// `group`: `::a::b`, empty at the root.
    pub group: Option<&'a str>,
    /// `check`: the check name (checks samples only).
    pub check: Option<&'a str>,
    /// `expected_response`: whether the status was expected.
    pub expected_response: Option<bool>,
    /// `error_code`: k6's error code (1000+status for HTTP errors >= 400).
    pub error_code: Option<u32>,
    /// Scenario, test and request tags.
    pub custom: &'a [(String, String)],
}

impl SampleTags<'_> {
    /// Whether the sample carries tag `key` with value `value` (how k6 matches sub-metrics).
    pub fn has(&self, key: &str, value: &str) -> bool {
        let mut number = itoa_buffer();
        match key {
            "name" => self.name == Some(value),
            "method" => self.method == Some(value),
            "status" => self.status.map(|s| format_u32(&mut number, u32::from(s))) == Some(value),
            "scenario" => self.scenario == Some(value),
            "group" => self.group == Some(value),
            "check" => self.check == Some(value),
            "expected_response" => {
                self.expected_response
                    .map(|e| if e { "true" } else { "false" })
                    == Some(value)
            }
            "error_code" => self.error_code.map(|c| format_u32(&mut number, c)) == Some(value),
            _ => self
                .custom
                .iter()
                .any(|(tag, tag_value)| tag == key && tag_value == value),
        }
    }
}

fn itoa_buffer() -> [u8; 10] {
    [0; 10]
}

/// Formats `value` into `buffer` without allocating; returns the digits.
fn format_u32(buffer: &mut [u8; 10], mut value: u32) -> &str {
    let mut position = buffer.len();
    loop {
        position -= 1;
        buffer[position] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    std::str::from_utf8(&buffer[position..]).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_system_and_custom_tags() {
        let custom = vec![("env".to_string(), "staging".to_string())];
        let tags = SampleTags {
            name: Some("login"),
            status: Some(200),
            expected_response: Some(true),
            error_code: None,
            custom: &custom,
            ..SampleTags::default()
        };
        assert!(tags.has("name", "login"));
        assert!(!tags.has("name", "logout"));
        assert!(tags.has("status", "200"));
        assert!(!tags.has("status", "20"));
        assert!(tags.has("expected_response", "true"));
        assert!(tags.has("env", "staging"));
        assert!(!tags.has("error_code", "1404"));
        assert!(!tags.has("method", "GET"));
    }
}
