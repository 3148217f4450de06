//! Metrics per subset (RewardBench-style categories): the rows of each value of a `subset` or
//! `category` column, reported alone, and the unweighted mean over subsets beside the pooled
//! numbers.

use std::collections::BTreeMap;

use crate::error::{ConfigError, ErrorKind, InputError, Location};
use crate::io::record::OptColumn;

/// Which column splits the rows (`--by subset|category`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum By {
    Subset,
    Category,
}

impl By {
    pub fn parse(name: &str) -> Result<Self, ConfigError> {
        match name.trim() {
            "subset" => Ok(By::Subset),
            "category" => Ok(By::Category),
            other => Err(ConfigError::Invalid(format!("`--by {other}`: the rows split by `subset` or `category`"))),
        }
    }

    pub fn column(self) -> &'static str {
        match self {
            By::Subset => "subset",
            By::Category => "category",
        }
    }
}

/// Row indices per value of `labels`, in name order. Every row needs a value: a row without
/// one is an error naming it (it would otherwise vanish from every subset).
pub fn group_rows(
    source: &str,
    by: By,
    labels: &OptColumn<String>,
) -> Result<BTreeMap<String, Vec<usize>>, InputError> {
    group_labels(source, by, labels.iter())
}

/// [`group_rows`] over any rows' labels (pairs and ensemble rows keep theirs per row).
pub fn group_labels<'a>(
    source: &str,
    by: By,
    labels: impl Iterator<Item = Option<&'a String>>,
) -> Result<BTreeMap<String, Vec<usize>>, InputError> {
    let at = |row: Option<usize>| {
        let location = Location::file(source).column(by.column());
        match row {
            Some(i) => location.row(i as u64 + 1),
            None => location,
        }
    };
    let mut groups: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    let mut first_missing = None;
    for (i, label) in labels.enumerate() {
        match label {
            Some(name) => groups.entry(name.clone()).or_default().push(i),
            None => {
                first_missing.get_or_insert(i);
            }
        }
    }
    match first_missing {
        // No row has one: the file has no such column.
        Some(_) if groups.is_empty() => Err(InputError::new(at(None), ErrorKind::MissingColumn)),
        Some(i) => Err(InputError::new(at(Some(i)), ErrorKind::MissingValue)),
        None if groups.is_empty() => Err(InputError::new(at(None), ErrorKind::Empty)),
        None => Ok(groups),
    }
}

/// The unweighted mean over subsets of every metric (NaN, null in JSON, where some subset's
/// value is NaN; a metric some subset lacks is left out).
pub fn mean_over_subsets(subsets: &BTreeMap<String, BTreeMap<String, f64>>) -> BTreeMap<String, f64> {
    let Some(first) = subsets.values().next() else { return BTreeMap::new() };
    first
        .keys()
        .filter(|name| subsets.values().all(|m| m.contains_key(*name)))
        .map(|name| {
            let sum: f64 = subsets.values().map(|m| m[name]).sum();
            (name.clone(), sum / subsets.len() as f64)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_group_by_name_and_a_missing_label_is_named() {
        let mut labels = OptColumn::default();
        for l in [Some("b"), Some("a"), Some("b")] {
            labels.push(l.map(str::to_string));
        }
        let groups = group_rows("f.jsonl", By::Subset, &labels).unwrap();
        assert_eq!(groups.into_iter().collect::<Vec<_>>(), vec![("a".into(), vec![1]), ("b".into(), vec![0, 2])]);
        labels.push(None);
        let e = group_rows("f.jsonl", By::Category, &labels).unwrap_err().to_string();
        assert!(e.contains("row 4") && e.contains("category"), "{e}");
        let e = group_rows("f.jsonl", By::Subset, &OptColumn::default()).unwrap_err().to_string();
        assert!(e.contains("subset"), "{e}");
    }

    #[test]
    fn the_mean_is_unweighted() {
        let m = |v: f64| BTreeMap::from([("x".to_string(), v)]);
        let subsets = BTreeMap::from([("a".to_string(), m(1.0)), ("b".to_string(), m(0.0))]);
        assert_eq!(mean_over_subsets(&subsets)["x"], 0.5);
    }
}
