//! Reward-ensemble rows for preference strength (`prefscope strength`): `id`, and
//! `chosen_rewards` and `rejected_rewards`, arrays of the same M scores (one per reward model),
//! in JSON Lines or Parquet (list columns). A row may also give a strong and a weak model's
//! log-probs of both completions (`chosen_strong_logps`, `chosen_weak_logps`,
//! `rejected_strong_logps`, `rejected_weak_logps`: sums, or per-token arrays that are summed):
//! their density ratio Σ log p_strong − Σ log p_weak (CDR, arXiv 2411.02481, as its authors'
//! `dpo_vllm.py` computes it: summed, not length-normalised) joins the ensemble as one more
//! reward. M ≥ 2 in all. Every row is kept or the read fails naming it.

use bytes::Bytes;

use super::lists::read_list_rows;
use crate::error::{ErrorKind, InputError};

/// One pair's scores under each reward model.
#[derive(Debug, Clone, PartialEq)]
pub struct EnsembleRow {
    pub id: String,
    pub chosen: Vec<f64>,
    pub rejected: Vec<f64>,
    /// The share of annotators who chose the chosen answer, the calibration's soft target.
    pub preference_share: Option<f64>,
    /// For `--by subset|category`.
    pub subset: Option<String>,
    pub category: Option<String>,
}

/// Reads the rows; `name` picks the format (by extension) and names errors.
pub fn read_ensemble(name: &str, bytes: Bytes) -> Result<Vec<EnsembleRow>, InputError> {
    let columns = ["chosen_rewards", "rejected_rewards"];
    let cdr = ["chosen_strong_logps", "chosen_weak_logps", "rejected_strong_logps", "rejected_weak_logps"];
    let mut out = Vec::new();
    let mut m = None;
    let lists = [&columns[..], &cdr[..], &["preference_share"][..]].concat();
    for mut row in read_list_rows(name, bytes, &lists, &["subset", "category"], "reward-ensemble rows")? {
        let preference_share = match row.columns.remove("preference_share").as_deref() {
            None => None,
            Some(&[share]) if (0.0..=1.0).contains(&share) => Some(share),
            Some(other) => {
                return Err(InputError::new(
                    row.at.column("preference_share"),
                    ErrorKind::InvalidValue(format!("a share of raters must be one number in [0, 1], found {other:?}")),
                ))
            }
        };
        // The density ratio, when the four log-prob columns are there, is one more reward.
        let present = cdr.iter().filter(|c| row.columns.contains_key(*c)).count();
        if present == 4 {
            let sum = |row: &super::lists::ListRow, c: &str| row.columns.get(c).map_or(0.0, |v| v.iter().sum::<f64>());
            let chosen = sum(&row, cdr[0]) - sum(&row, cdr[1]);
            let rejected = sum(&row, cdr[2]) - sum(&row, cdr[3]);
            row.columns.entry("chosen_rewards").or_default().push(chosen);
            row.columns.entry("rejected_rewards").or_default().push(rejected);
        } else if present > 0 {
            let missing = cdr.iter().find(|c| !row.columns.contains_key(*c)).copied().unwrap_or(cdr[0]);
            return Err(InputError::new(
                row.at.column(missing),
                ErrorKind::InvalidValue(
                    "the density-ratio reward needs all four strong and weak log-prob columns".into(),
                ),
            ));
        }
        for column in columns {
            let Some(values) = row.columns.get(column) else {
                return Err(InputError::new(row.at.column(column), ErrorKind::MissingValue));
            };
            if values.len() < 2 {
                return Err(InputError::new(
                    row.at.column(column),
                    ErrorKind::InvalidValue(format!(
                        "{} reward given: preference strength needs an ensemble of at least two reward models",
                        values.len()
                    )),
                ));
            }
            let m = *m.get_or_insert(values.len());
            if values.len() != m {
                let other = "row 1's chosen_rewards".to_string();
                return Err(InputError::new(
                    row.at.column(column),
                    ErrorKind::Ragged { len: values.len(), other, other_len: m },
                ));
            }
            if let Some(v) = values.iter().find(|v| !v.is_finite()) {
                return Err(InputError::new(row.at.column(column), ErrorKind::NonFinite(v.to_string())));
            }
        }
        let chosen = row.columns.remove("chosen_rewards").unwrap_or_default();
        let rejected = row.columns.remove("rejected_rewards").unwrap_or_default();
        let subset = row.texts.remove("subset");
        let category = row.texts.remove("category");
        out.push(EnsembleRow { id: row.id, chosen, rejected, preference_share, subset, category });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<Vec<EnsembleRow>, InputError> {
        read_ensemble("e.jsonl", Bytes::from(text.to_string()))
    }

    #[test]
    fn rows_and_bad_rows() {
        let rows = read("{\"id\": \"a\", \"chosen_rewards\": [1, 2], \"rejected_rewards\": [0, 0.5]}\n{\"chosen_rewards\": [3, 4], \"rejected_rewards\": [1, 1]}\n").unwrap();
        let plain = |id: &str, chosen: Vec<f64>, rejected: Vec<f64>| EnsembleRow {
            id: id.into(),
            chosen,
            rejected,
            preference_share: None,
            subset: None,
            category: None,
        };
        assert_eq!(rows[1], plain("2", vec![3.0, 4.0], vec![1.0, 1.0]));
        let labelled = read("{\"id\": \"a\", \"chosen_rewards\": [1, 2], \"rejected_rewards\": [0, 0.5], \"preference_share\": 0.75, \"subset\": \"chat\", \"category\": 3}\n").unwrap();
        assert_eq!(
            (labelled[0].preference_share, labelled[0].subset.as_deref(), labelled[0].category.as_deref()),
            (Some(0.75), Some("chat"), Some("3"))
        );
        let share = read("{\"chosen_rewards\": [1, 2], \"rejected_rewards\": [0, 0], \"preference_share\": 1.5}\n")
            .unwrap_err();
        assert_eq!((share.location.row, share.location.column), (Some(1), Some("preference_share")));
        let one = read("{\"id\": 1, \"chosen_rewards\": [1], \"rejected_rewards\": [0]}\n").unwrap_err();
        assert!(one.to_string().contains("at least two reward models"), "{one}");
        let ragged =
            read("{\"chosen_rewards\": [1, 2], \"rejected_rewards\": [0, 0]}\n{\"chosen_rewards\": [1, 2, 3], \"rejected_rewards\": [0, 0, 0]}\n")
                .unwrap_err();
        assert_eq!((ragged.location.row, ragged.location.column), (Some(2), Some("chosen_rewards")));
        let missing = read("{\"id\": 1, \"chosen_rewards\": [1, 2]}\n").unwrap_err();
        assert_eq!((missing.location.column, missing.kind), (Some("rejected_rewards"), ErrorKind::MissingValue));
        assert_eq!(read("").unwrap_err().kind, ErrorKind::Empty);
        // The density ratio of a strong and a weak model joins one reward model.
        let cdr = read("{\"chosen_rewards\": [1], \"rejected_rewards\": [0], \"chosen_strong_logps\": [-1, -2], \"chosen_weak_logps\": -4, \"rejected_strong_logps\": -5, \"rejected_weak_logps\": [-2, -1]}\n").unwrap();
        assert_eq!((cdr[0].chosen.clone(), cdr[0].rejected.clone()), (vec![1.0, 1.0], vec![0.0, -2.0]));
        let partial = read("{\"chosen_rewards\": [1, 2], \"rejected_rewards\": [0, 0], \"chosen_strong_logps\": -1}\n")
            .unwrap_err();
        assert_eq!(partial.location.column, Some("chosen_weak_logps"));
    }
}
