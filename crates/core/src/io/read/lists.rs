//! Rows whose values are arrays of numbers (reward ensembles, ranked lists), in JSON Lines or
//! Parquet (list columns): an `id` and the named array columns, each located when missing or
//! of the wrong type. A plain number reads as an array of one (a summed log-prob where per-token
//! ones could be given). The callers check lengths and values.

use std::collections::BTreeMap;

use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef};
use arrow_schema::DataType;
use bytes::Bytes;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::Value;

use super::jsonl::number_list;
use super::{json_lines, Format};
use crate::error::{ErrorKind, InputError, Location};

/// One row: its id (the row number when absent), its location, each present text column the
/// caller named (`group`, `user_id`: strings, or numbers as written), and each present array
/// column.
pub(crate) struct ListRow {
    pub id: String,
    pub texts: BTreeMap<&'static str, String>,
    pub at: Location,
    pub columns: BTreeMap<&'static str, Vec<f64>>,
}

impl ListRow {
    /// Takes the array `column`, which every row must give with one width: `width` is set by
    /// the first row (`first` names that row's column in the error) and checked on the rest;
    /// the values must be finite.
    pub fn vector(&mut self, column: &'static str, width: &mut usize, first: &str) -> Result<Vec<f64>, InputError> {
        let Some(values) = self.columns.remove(column) else {
            return Err(InputError::new(self.at.clone().column(column), ErrorKind::MissingValue));
        };
        if *width == 0 {
            *width = values.len();
        }
        if values.is_empty() || values.len() != *width {
            let other = format!("row 1's {first}");
            return Err(InputError::new(
                self.at.clone().column(column),
                ErrorKind::Ragged { len: values.len(), other, other_len: *width },
            ));
        }
        if let Some(v) = values.iter().find(|v| !v.is_finite()) {
            return Err(InputError::new(self.at.clone().column(column), ErrorKind::NonFinite(v.to_string())));
        }
        Ok(values)
    }
}

/// Reads `columns` and the text columns `texts` (absent or null ones are left out of a row)
/// from JSON Lines or Parquet; `what` names the data in the error for CSV.
pub(crate) fn read_list_rows(
    name: &str,
    bytes: Bytes,
    columns: &[&'static str],
    texts: &[&'static str],
    what: &str,
) -> Result<Vec<ListRow>, InputError> {
    let rows = match Format::from_name(name)? {
        Format::Jsonl => jsonl(name, &bytes, columns, texts)?,
        Format::Parquet => parquet(name, bytes, columns, texts)?,
        Format::Csv => {
            return Err(InputError::new(
                Location::file(name),
                ErrorKind::InvalidValue(format!("{what} are JSON Lines or Parquet (their values are arrays)")),
            ))
        }
    };
    if rows.is_empty() {
        return Err(InputError::new(Location::file(name), ErrorKind::Empty));
    }
    Ok(rows)
}

fn jsonl(
    name: &str,
    bytes: &[u8],
    columns: &[&'static str],
    texts: &[&'static str],
) -> Result<Vec<ListRow>, InputError> {
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
        let mut found_texts = BTreeMap::new();
        for &c in texts {
            match value.get(c) {
                Some(Value::String(s)) => {
                    found_texts.insert(c, s.clone());
                }
                Some(Value::Number(n)) => {
                    found_texts.insert(c, n.to_string());
                }
                None | Some(Value::Null) => {}
                Some(other) => {
                    return Err(InputError::new(
                        at.column(c),
                        ErrorKind::WrongType { expected: "a string or a number", found: other.to_string() },
                    ))
                }
            }
        }
        let mut found = BTreeMap::new();
        for &c in columns {
            match value.get(c) {
                None | Some(Value::Null) => {}
                Some(Value::Number(n)) => {
                    found.insert(c, vec![n.as_f64().unwrap_or(f64::NAN)]);
                }
                Some(v) => {
                    found.insert(c, number_list(v).map_err(|kind| InputError::new(at.clone().column(c), kind))?);
                }
            }
        }
        rows.push(ListRow { id, texts: found_texts, at, columns: found });
    }
    Ok(rows)
}

fn numbers(array: &ArrayRef, i: usize) -> Option<Vec<f64>> {
    use arrow_array::types::{Float32Type, Float64Type, Int32Type, Int64Type};
    let values = match array.data_type() {
        DataType::List(_) => array.as_list::<i32>().value(i),
        DataType::LargeList(_) => array.as_list::<i64>().value(i),
        DataType::FixedSizeList(..) => array.as_fixed_size_list().value(i),
        DataType::Float64 => return Some(vec![array.as_primitive::<Float64Type>().value(i)]),
        DataType::Float32 => return Some(vec![array.as_primitive::<Float32Type>().value(i) as f64]),
        DataType::Int64 => return Some(vec![array.as_primitive::<Int64Type>().value(i) as f64]),
        DataType::Int32 => return Some(vec![array.as_primitive::<Int32Type>().value(i) as f64]),
        _ => return None,
    };
    if values.null_count() > 0 {
        return None;
    }
    match values.data_type() {
        DataType::Float64 => Some(values.as_primitive::<Float64Type>().values().to_vec()),
        DataType::Float32 => Some(values.as_primitive::<Float32Type>().values().iter().map(|&v| v as f64).collect()),
        DataType::Int64 => Some(values.as_primitive::<Int64Type>().values().iter().map(|&v| v as f64).collect()),
        DataType::Int32 => Some(values.as_primitive::<Int32Type>().values().iter().map(|&v| v as f64).collect()),
        _ => None,
    }
}

fn parquet(
    name: &str,
    bytes: Bytes,
    columns: &[&'static str],
    texts: &[&'static str],
) -> Result<Vec<ListRow>, InputError> {
    let bad = |e: &dyn std::fmt::Display| {
        InputError::new(Location::file(name), ErrorKind::Malformed { format: "Parquet", message: e.to_string() })
    };
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes.clone()).map_err(|e| bad(&e))?;
    super::parquet::check_offsets(builder.metadata()).map_err(|kind| InputError::new(Location::file(name), kind))?;
    super::parquet::check_dictionaries(&std::sync::Arc::new(bytes), builder.metadata(), None)
        .map_err(|kind| InputError::new(Location::file(name), kind))?;
    let reader = builder.build().map_err(|e| bad(&e))?;
    let mut rows = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| bad(&e))?;
        let ids = batch.column_by_name("id");
        for i in 0..batch.num_rows() {
            let at = Location::file(name).row(rows.len() as u64 + 1);
            // A text id (the pairs reader's rule), an integer one, or the row number.
            let id =
                ids.and_then(|a| super::pairs::name_at(a.as_ref(), i)).unwrap_or_else(|| (rows.len() + 1).to_string());
            let mut found_texts = BTreeMap::new();
            for &c in texts {
                let Some(array) = batch.column_by_name(c).filter(|a| !a.is_null(i)) else { continue };
                let text = super::pairs::name_at(array.as_ref(), i).ok_or_else(|| {
                    InputError::new(
                        at.clone().column(c),
                        ErrorKind::WrongType { expected: "a string or a number", found: array.data_type().to_string() },
                    )
                })?;
                found_texts.insert(c, text);
            }
            let mut found = BTreeMap::new();
            for &c in columns {
                let Some(array) = batch.column_by_name(c).filter(|a| !a.is_null(i)) else { continue };
                let values = numbers(array, i).ok_or_else(|| {
                    InputError::new(
                        at.clone().column(c),
                        ErrorKind::WrongType {
                            expected: "a list of numbers without nulls",
                            found: array.data_type().to_string(),
                        },
                    )
                })?;
                found.insert(c, values);
            }
            rows.push(ListRow { id, texts: found_texts, at, columns: found });
        }
    }
    Ok(rows)
}
