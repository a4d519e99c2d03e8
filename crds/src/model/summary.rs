//! The summary's trend statistics (`summaryTrendStats`): the one parser of `avg`, `min`, `med`,
//! `max`, `count` and `p(N)`, used by validation, by the model and by the summary printers.

use crate::path::FieldPath;
use crate::spec::LoadTestSpec;
use crate::validate::Problem;

/// k6's default `summaryTrendStats`.
pub const DEFAULT_TREND_STATS: [&str; 6] = ["avg", "min", "med", "max", "p(90)", "p(95)"];

/// One statistic of a trend.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TrendStat {
    /// The mean.
    Avg,
    /// The minimum.
    Min,
    /// The median.
    Med,
    /// The maximum.
    Max,
    /// The number of samples.
    Count,
    /// A percentile, 0..=100.
    Percentile(f64),
}

/// Why a trend statistic was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a trend statistic; use avg, min, med, max, count or p(N) with 0 <= N <= 100")]
pub struct TrendStatError(pub String);

impl TrendStat {
    /// The statistics with a plain name (besides `p(N)`).
    pub const NAMES: [&'static str; 5] = ["avg", "min", "med", "max", "count"];

    /// Parses a statistic as k6 writes it: a name or `p(N)` with 0 <= N <= 100.
    pub fn parse(text: &str) -> Result<TrendStat, TrendStatError> {
        Ok(match text {
            "avg" => TrendStat::Avg,
            "min" => TrendStat::Min,
            "med" => TrendStat::Med,
            "max" => TrendStat::Max,
            "count" => TrendStat::Count,
            _ => text
                .strip_prefix("p(")
                .and_then(|rest| rest.strip_suffix(')'))
                .and_then(|number| number.trim().parse::<f64>().ok())
                .filter(|percentile| (0.0..=100.0).contains(percentile))
                .map(TrendStat::Percentile)
                .ok_or_else(|| TrendStatError(text.to_string()))?,
        })
    }
}

/// One column of the summary's trend lines: the statistic and its label as written.
#[derive(Debug, Clone, PartialEq)]
pub struct TrendColumn {
    /// The label, as the manifest wrote it (`p(99.9)`).
    pub label: String,
    /// The statistic.
    pub stat: TrendStat,
}

impl TrendColumn {
    /// A column as k6 writes it (`p(99.9)`), its label kept as written.
    pub fn parse(label: &str) -> Result<TrendColumn, TrendStatError> {
        Ok(TrendColumn {
            label: label.to_string(),
            stat: TrendStat::parse(label)?,
        })
    }

    /// k6's default columns.
    pub fn defaults() -> Vec<TrendColumn> {
        DEFAULT_TREND_STATS
            .iter()
            .filter_map(|label| TrendColumn::parse(label).ok())
            .collect()
    }
}

/// On the wire (a result, a report) a column is its label, as `summaryTrendStats` writes it.
impl serde::Serialize for TrendColumn {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.label)
    }
}

impl<'de> serde::Deserialize<'de> for TrendColumn {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let label = String::deserialize(deserializer)?;
        TrendColumn::parse(&label).map_err(serde::de::Error::custom)
    }
}

/// The summary's trend columns of a validated spec: `summaryTrendStats`, or k6's default.
pub fn compile(spec: &LoadTestSpec) -> Result<Vec<TrendColumn>, Vec<Problem>> {
    let labels: Vec<&str> = match &spec.summary_trend_stats {
        Some(stats) => stats.iter().map(String::as_str).collect(),
        None => DEFAULT_TREND_STATS.to_vec(),
    };
    let path = FieldPath::root().key("spec").key("summaryTrendStats");
    let mut columns = Vec::new();
    let mut problems = Vec::new();
    for (index, label) in labels.into_iter().enumerate() {
        match TrendColumn::parse(label) {
            Ok(column) => columns.push(column),
            Err(error) => problems.push(Problem::new(path.index(index), error.to_string())),
        }
    }
    if problems.is_empty() {
        Ok(columns)
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_and_percentiles() {
        assert_eq!(TrendStat::parse("med"), Ok(TrendStat::Med));
        assert_eq!(TrendStat::parse("count"), Ok(TrendStat::Count));
        assert_eq!(TrendStat::parse("p(99.9)"), Ok(TrendStat::Percentile(99.9)));
        assert_eq!(TrendStat::parse("p( 50 )"), Ok(TrendStat::Percentile(50.0)));
        assert!(TrendStat::parse("p(101)").is_err());
        assert!(TrendStat::parse("p95").is_err());
        assert!(TrendStat::parse("Avg").is_err());
    }

    #[test]
    fn a_column_travels_as_its_label_and_a_bad_one_is_refused() {
        let columns: Vec<TrendColumn> = serde_json::from_str(r#"["p( 99 )", "count"]"#).unwrap();
        assert_eq!(columns[0].stat, TrendStat::Percentile(99.0));
        assert_eq!(
            serde_json::to_string(&columns).unwrap(),
            r#"["p( 99 )","count"]"#
        );
        let error = serde_json::from_str::<Vec<TrendColumn>>(r#"["mode"]"#).unwrap_err();
        assert!(
            error.to_string().contains("not a trend statistic"),
            "{error}"
        );
    }

    #[test]
    fn columns_default_to_k6s() {
        let spec: LoadTestSpec = serde_yaml_ng::from_str("{}").unwrap();
        let labels: Vec<String> = compile(&spec)
            .unwrap()
            .into_iter()
            .map(|column| column.label)
            .collect();
        assert_eq!(labels, DEFAULT_TREND_STATS);
        let spec: LoadTestSpec =
            serde_yaml_ng::from_str("{summaryTrendStats: [count, 'p(99.9)', mode]}").unwrap();
        let problems = compile(&spec).unwrap_err();
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].path.to_string(), "spec.summaryTrendStats[2]");
    }
}
