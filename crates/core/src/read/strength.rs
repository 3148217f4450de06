//! Reward-ensemble rows for preference strength (`prefscope strength`): `id`, and
//! `chosen_rewards` and `rejected_rewards`, arrays of the same M ≥ 2 scores (one per reward
//! model), in JSON Lines or Parquet (list columns). Every row is kept or the read fails
//! naming it.

use bytes::Bytes;

use super::lists::read_list_rows;
use crate::error::{ErrorKind, InputError};

/// One pair's scores under each reward model.
#[derive(Debug, Clone, PartialEq)]
pub struct EnsembleRow {
    pub id: String,
    pub chosen: Vec<f64>,
    pub rejected: Vec<f64>,
}

/// Reads the rows; `name` picks the format (by extension) and names errors.
pub fn read_ensemble(name: &str, bytes: Bytes) -> Result<Vec<EnsembleRow>, InputError> {
    let columns = ["chosen_rewards", "rejected_rewards"];
    let mut out = Vec::new();
    let mut m = None;
    for mut row in read_list_rows(name, bytes, &columns, "reward-ensemble rows")? {
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
        out.push(EnsembleRow { id: row.id, chosen, rejected });
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
        assert_eq!(rows[1], EnsembleRow { id: "2".into(), chosen: vec![3.0, 4.0], rejected: vec![1.0, 1.0] });
        let one = read("{\"id\": 1, \"chosen_rewards\": [1], \"rejected_rewards\": [0]}\n").unwrap_err();
        assert!(one.to_string().contains("at least two reward models"), "{one}");
        let ragged =
            read("{\"chosen_rewards\": [1, 2], \"rejected_rewards\": [0, 0]}\n{\"chosen_rewards\": [1, 2, 3], \"rejected_rewards\": [0, 0, 0]}\n")
                .unwrap_err();
        assert_eq!((ragged.location.row, ragged.location.column), (Some(2), Some("chosen_rewards")));
        let missing = read("{\"id\": 1, \"chosen_rewards\": [1, 2]}\n").unwrap_err();
        assert_eq!((missing.location.column, missing.kind), (Some("rejected_rewards"), ErrorKind::MissingValue));
        assert_eq!(read("").unwrap_err().kind, ErrorKind::Empty);
    }
}
