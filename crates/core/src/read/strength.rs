//! Reward-ensemble rows for preference strength (`prefscope strength`): `id`, and
//! `chosen_rewards` and `rejected_rewards`, arrays of the same M ≥ 2 scores (one per reward
//! model), in JSON Lines or Parquet (list columns). Every row is kept or the read fails
//! naming it.

use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef};
use arrow_schema::DataType;
use bytes::Bytes;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::Value;

use super::jsonl::number_list;
use super::{json_lines, Format};
use crate::error::{ErrorKind, InputError, Location};

/// One pair's scores under each reward model.
#[derive(Debug, Clone, PartialEq)]
pub struct EnsembleRow {
    pub id: String,
    pub chosen: Vec<f64>,
    pub rejected: Vec<f64>,
}

/// Reads the rows; `name` picks the format (by extension) and names errors.
pub fn read_ensemble(name: &str, bytes: Bytes) -> Result<Vec<EnsembleRow>, InputError> {
    let rows = match Format::from_name(name)? {
        Format::Jsonl => jsonl(name, &bytes)?,
        Format::Parquet => parquet(name, bytes)?,
        Format::Csv => {
            return Err(InputError::new(
                Location::file(name),
                ErrorKind::InvalidValue(
                    "reward-ensemble rows are JSON Lines or Parquet (their rewards are arrays)".into(),
                ),
            ))
        }
    };
    let Some(first) = rows.first() else { return Err(InputError::new(Location::file(name), ErrorKind::Empty)) };
    let m = first.chosen.len();
    for (i, row) in rows.iter().enumerate() {
        let at = Location::file(name).row(i as u64 + 1);
        for (column, values) in [("chosen_rewards", &row.chosen), ("rejected_rewards", &row.rejected)] {
            if values.len() < 2 {
                return Err(InputError::new(
                    at.column(column),
                    ErrorKind::InvalidValue(format!(
                        "{} reward given: preference strength needs an ensemble of at least two reward models",
                        values.len()
                    )),
                ));
            }
            if values.len() != m {
                let other = "row 1's chosen_rewards".to_string();
                return Err(InputError::new(
                    at.column(column),
                    ErrorKind::Ragged { len: values.len(), other, other_len: m },
                ));
            }
            if let Some(v) = values.iter().find(|v| !v.is_finite()) {
                return Err(InputError::new(at.column(column), ErrorKind::NonFinite(v.to_string())));
            }
        }
    }
    Ok(rows)
}

fn jsonl(name: &str, bytes: &[u8]) -> Result<Vec<EnsembleRow>, InputError> {
    let mut rows = Vec::new();
    for (at, value) in json_lines(name, bytes)? {
        let id = match value.get("id") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            None | Some(Value::Null) => (rows.len() + 1).to_string(),
            Some(other) => {
                return Err(InputError::new(
                    at.column("id"),
                    ErrorKind::WrongType { expected: "a string or a number", found: other.to_string() },
                ))
            }
        };
        let list = |column: &'static str| match value.get(column) {
            None | Some(Value::Null) => Err(InputError::new(at.clone().column(column), ErrorKind::MissingValue)),
            Some(v) => number_list(v).map_err(|kind| InputError::new(at.clone().column(column), kind)),
        };
        rows.push(EnsembleRow { id, chosen: list("chosen_rewards")?, rejected: list("rejected_rewards")? });
    }
    Ok(rows)
}

fn numbers(array: &ArrayRef, i: usize) -> Option<Vec<f64>> {
    use arrow_array::types::{Float32Type, Float64Type};
    if array.is_null(i) {
        return None;
    }
    let values = match array.data_type() {
        DataType::List(_) => array.as_list::<i32>().value(i),
        DataType::LargeList(_) => array.as_list::<i64>().value(i),
        _ => return None,
    };
    if values.null_count() > 0 {
        return None;
    }
    match values.data_type() {
        DataType::Float64 => Some(values.as_primitive::<Float64Type>().values().to_vec()),
        DataType::Float32 => Some(values.as_primitive::<Float32Type>().values().iter().map(|&v| v as f64).collect()),
        _ => None,
    }
}

fn parquet(name: &str, bytes: Bytes) -> Result<Vec<EnsembleRow>, InputError> {
    let bad = |e: &dyn std::fmt::Display| {
        InputError::new(Location::file(name), ErrorKind::Malformed { format: "Parquet", message: e.to_string() })
    };
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(|e| bad(&e))?;
    super::parquet::check_offsets(builder.metadata()).map_err(|kind| InputError::new(Location::file(name), kind))?;
    let reader = builder.build().map_err(|e| bad(&e))?;
    let mut rows = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| bad(&e))?;
        let column = |c: &'static str| {
            batch
                .column_by_name(c)
                .ok_or_else(|| InputError::new(Location::file(name).column(c), ErrorKind::MissingColumn))
        };
        let (chosen, rejected) = (column("chosen_rewards")?, column("rejected_rewards")?);
        let ids = batch.column_by_name("id");
        for i in 0..batch.num_rows() {
            let at = Location::file(name).row(rows.len() as u64 + 1);
            let list = |array: &ArrayRef, c: &'static str| {
                numbers(array, i).ok_or_else(|| {
                    InputError::new(
                        at.clone().column(c),
                        ErrorKind::WrongType {
                            expected: "a list of floats without nulls",
                            found: array.data_type().to_string(),
                        },
                    )
                })
            };
            let id = ids
                .and_then(|a| match a.data_type() {
                    DataType::Utf8 if !a.is_null(i) => Some(a.as_string::<i32>().value(i).to_string()),
                    DataType::LargeUtf8 if !a.is_null(i) => Some(a.as_string::<i64>().value(i).to_string()),
                    DataType::Int64 if !a.is_null(i) => {
                        Some(a.as_primitive::<arrow_array::types::Int64Type>().value(i).to_string())
                    }
                    _ => None,
                })
                .unwrap_or_else(|| (rows.len() + 1).to_string());
            rows.push(EnsembleRow {
                id,
                chosen: list(chosen, "chosen_rewards")?,
                rejected: list(rejected, "rejected_rewards")?,
            });
        }
    }
    Ok(rows)
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
