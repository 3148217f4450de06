//! Pick-a-Pic style labelled pairs (docs/DESIGN.md "Labelled pairs"): `caption`, `jpg_0`,
//! `jpg_1` (bytes, or a path or URL) and `label_0` (1, 0 or 0.5 for a tie), in JSON Lines or
//! Parquet. Parquet image columns may be binary, text (paths), or Hugging Face's image struct
//! `{bytes, path}`.

use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef, StructArray};
use arrow_schema::DataType;
use bytes::Bytes;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::Value;

use super::{arrow_rows, json_lines, Format};
use crate::error::{ErrorKind, InputError, Location};
use crate::io::record::{ImageRef, PickPair};

/// Reads labelled pairs; `name` picks the format (by extension) and names errors.
pub fn read_pairs(name: &str, bytes: Bytes) -> Result<Vec<PickPair>, InputError> {
    let pairs = match Format::from_name(name)? {
        Format::Jsonl => jsonl(name, &bytes)?,
        Format::Parquet => parquet(name, bytes)?,
        Format::Csv => {
            return Err(InputError::new(
                Location::file(name),
                ErrorKind::InvalidValue("labelled pairs are JSON Lines or Parquet".into()),
            ))
        }
    };
    if pairs.is_empty() {
        return Err(InputError::new(Location::file(name), ErrorKind::Empty));
    }
    Ok(pairs)
}

fn label(value: f64, at: &Location) -> Result<f64, InputError> {
    if [0.0, 0.5, 1.0].contains(&value) {
        Ok(value)
    } else {
        Err(InputError::new(
            at.clone().column("label_0"),
            ErrorKind::InvalidValue(format!("label_0 must be 1, 0 or 0.5 (a tie), found {value}")),
        ))
    }
}

fn jsonl(name: &str, bytes: &[u8]) -> Result<Vec<PickPair>, InputError> {
    let mut pairs = Vec::new();
    for (at, value) in json_lines(name, bytes)? {
        let missing = |column: &'static str| InputError::new(at.clone().column(column), ErrorKind::MissingValue);
        let image = |column: &'static str| -> Result<ImageRef, InputError> {
            match value.get(column) {
                Some(Value::String(s)) if !s.is_empty() => Ok(ImageRef::Path(s.clone())),
                Some(v @ Value::Array(_)) => {
                    serde_json::from_value::<Vec<u8>>(v.clone()).map(ImageRef::Bytes).map_err(|_| {
                        InputError::new(
                            at.clone().column(column),
                            ErrorKind::WrongType {
                                expected: "a path, a URL or an array of bytes",
                                found: "another array".into(),
                            },
                        )
                    })
                }
                None | Some(Value::Null) => Err(missing(column)),
                Some(other) => Err(InputError::new(
                    at.clone().column(column),
                    ErrorKind::WrongType { expected: "a path, a URL or an array of bytes", found: other.to_string() },
                )),
            }
        };
        let caption = match value.get("caption") {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            _ => return Err(missing("caption")),
        };
        let label_0 = match value.get("label_0") {
            Some(Value::Number(n)) => label(n.as_f64().unwrap_or(f64::NAN), &at)?,
            _ => return Err(missing("label_0")),
        };
        let name = |column: &'static str| match value.get(column) {
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            None | Some(Value::Null) => Ok(None),
            Some(other) => Err(InputError::new(
                at.clone().column(column),
                ErrorKind::WrongType { expected: "a string or a number", found: other.to_string() },
            )),
        };
        let (user_id, subset, category) = (name("user_id")?, name("subset")?, name("category")?);
        let (jpg_0, jpg_1) = (image("jpg_0")?, image("jpg_1")?);
        pairs.push(PickPair { caption, jpg_0, jpg_1, label_0, user_id, subset, category });
    }
    Ok(pairs)
}

fn parquet_error(name: &str, e: impl std::fmt::Display) -> InputError {
    InputError::new(Location::file(name), ErrorKind::Malformed { format: "Parquet", message: e.to_string() })
}

fn image_at(array: &dyn Array, i: usize) -> Option<ImageRef> {
    if array.is_null(i) {
        return None;
    }
    match array.data_type() {
        DataType::Binary => Some(ImageRef::Bytes(array.as_binary::<i32>().value(i).to_vec())),
        DataType::LargeBinary => Some(ImageRef::Bytes(array.as_binary::<i64>().value(i).to_vec())),
        DataType::BinaryView => Some(ImageRef::Bytes(array.as_binary_view().value(i).to_vec())),
        DataType::Utf8 => Some(ImageRef::Path(array.as_string::<i32>().value(i).to_string())),
        DataType::LargeUtf8 => Some(ImageRef::Path(array.as_string::<i64>().value(i).to_string())),
        DataType::Utf8View => Some(ImageRef::Path(array.as_string_view().value(i).to_string())),
        DataType::Struct(_) => {
            // Hugging Face datasets' Image feature: bytes when present, else the path.
            let s: &StructArray = array.as_struct();
            let field = |n: &str| s.column_by_name(n).filter(|c| !c.is_null(i)).and_then(|c| image_at(c.as_ref(), i));
            field("bytes").or_else(|| field("path"))
        }
        _ => None,
    }
}

/// A name written as text or as a number (ids, users, groups): integers exactly (an id past
/// 2⁵³ read through f64 would merge with its neighbours), other numbers as written by Rust.
pub(super) fn name_at(array: &dyn Array, i: usize) -> Option<String> {
    use arrow_array::types::UInt64Type;
    if array.is_null(i) {
        return None;
    }
    text_at(array, i)
        .or_else(|| match array.data_type() {
            DataType::UInt64 => Some(array.as_primitive::<UInt64Type>().value(i).to_string()),
            _ => arrow_rows::integer_at(array, i).map(|v| v.to_string()),
        })
        .or_else(|| number_at(array, i).map(|n| n.to_string()))
}

/// A string value, `None` for a null or a column of another type.
pub(super) fn text_at(array: &dyn Array, i: usize) -> Option<String> {
    arrow_rows::text_at(array, i).filter(|_| !array.is_null(i))
}

/// A numeric value as `f64`, `None` for a null or a column of another type.
pub(super) fn number_at(array: &dyn Array, i: usize) -> Option<f64> {
    arrow_rows::number_at(array, i).filter(|_| !array.is_null(i))
}

fn parquet(name: &str, bytes: Bytes) -> Result<Vec<PickPair>, InputError> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes.clone()).map_err(|e| parquet_error(name, e))?;
    super::parquet::check_offsets(builder.metadata()).map_err(|kind| InputError::new(Location::file(name), kind))?;
    super::parquet::check_dictionaries(&std::sync::Arc::new(bytes), builder.metadata(), None)
        .map_err(|kind| InputError::new(Location::file(name), kind))?;
    let reader = builder.build().map_err(|e| parquet_error(name, e))?;
    let mut pairs = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| parquet_error(name, e))?;
        let column = |c: &'static str| -> Result<&ArrayRef, InputError> {
            batch
                .column_by_name(c)
                .ok_or_else(|| InputError::new(Location::file(name).column(c), ErrorKind::MissingColumn))
        };
        let (caption, jpg_0, jpg_1, label_0) =
            (column("caption")?, column("jpg_0")?, column("jpg_1")?, column("label_0")?);
        let (users, subsets, categories) =
            (batch.column_by_name("user_id"), batch.column_by_name("subset"), batch.column_by_name("category"));
        for i in 0..batch.num_rows() {
            let at = Location::file(name).row(pairs.len() as u64 + 1);
            let wrong = |c: &'static str, a: &ArrayRef, expected: &'static str| {
                let kind = if a.is_null(i) {
                    ErrorKind::MissingValue
                } else {
                    ErrorKind::WrongType { expected, found: a.data_type().to_string() }
                };
                InputError::new(at.clone().column(c), kind)
            };
            let caption = text_at(caption.as_ref(), i).ok_or_else(|| wrong("caption", caption, "text"))?;
            let image0 = image_at(jpg_0.as_ref(), i).ok_or_else(|| wrong("jpg_0", jpg_0, "image bytes or a path"))?;
            let image1 = image_at(jpg_1.as_ref(), i).ok_or_else(|| wrong("jpg_1", jpg_1, "image bytes or a path"))?;
            let l = number_at(label_0.as_ref(), i).ok_or_else(|| wrong("label_0", label_0, "a number"))?;
            let name = |column: &'static str, a: Option<&ArrayRef>| match a.filter(|a| !a.is_null(i)) {
                Some(a) => name_at(a.as_ref(), i).map(Some).ok_or_else(|| wrong(column, a, "text or a number")),
                None => Ok(None),
            };
            let user_id = name("user_id", users)?;
            let (subset, category) = (name("subset", subsets)?, name("category", categories)?);
            pairs.push(PickPair {
                caption,
                jpg_0: image0,
                jpg_1: image1,
                label_0: label(l, &at)?,
                user_id,
                subset,
                category,
            });
        }
    }
    Ok(pairs)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{BinaryArray, Float64Array, RecordBatch, StringArray};
    use arrow_schema::{Field, Schema};

    use super::*;

    #[test]
    fn jsonl_paths_bytes_and_labels() {
        let text = "{\"caption\": \"a cat\", \"jpg_0\": \"a.png\", \"jpg_1\": [1, 2], \"label_0\": 0.5}\n\n";
        let pairs = read_pairs("p.jsonl", Bytes::from(text)).unwrap();
        assert_eq!(pairs[0].jpg_0, ImageRef::Path("a.png".into()));
        assert_eq!(pairs[0].jpg_1, ImageRef::Bytes(vec![1, 2]));
        assert_eq!(pairs[0].label_0, 0.5);
        let bad = "{\"caption\": \"a\", \"jpg_0\": \"a\", \"jpg_1\": \"b\", \"label_0\": 0.3}\n";
        let e = read_pairs("p.jsonl", Bytes::from(bad)).unwrap_err();
        assert_eq!((e.location.row, e.location.column), (Some(1), Some("label_0")));
        let e = read_pairs("p.jsonl", Bytes::from("{\"caption\": \"a\", \"jpg_0\": \"a\"")).unwrap_err();
        assert!(matches!(e.kind, ErrorKind::Truncated(_)), "{e}");
        let e =
            read_pairs("p.jsonl", Bytes::from("{\"caption\": \"a\", \"jpg_1\": \"b\", \"label_0\": 1}\n")).unwrap_err();
        assert_eq!((e.location.column, e.kind), (Some("jpg_0"), ErrorKind::MissingValue));
    }

    #[test]
    fn parquet_binary_columns() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("caption", DataType::Utf8, false),
            Field::new("jpg_0", DataType::Binary, false),
            Field::new("jpg_1", DataType::Binary, false),
            Field::new("label_0", DataType::Float64, false),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from(vec!["x", "y"])),
                Arc::new(BinaryArray::from(vec![&b"\x01"[..], b"\x02"])),
                Arc::new(BinaryArray::from(vec![&b"\x03"[..], b"\x04"])),
                Arc::new(Float64Array::from(vec![1.0, 0.0])),
            ],
        )
        .unwrap();
        let mut out = Vec::new();
        let mut w = parquet::arrow::ArrowWriter::try_new(&mut out, schema, None).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        let pairs = read_pairs("p.parquet", Bytes::from(out)).unwrap();
        assert_eq!(pairs.len(), 2);
        assert_eq!(pairs[1].jpg_1, ImageRef::Bytes(vec![4]));
        assert_eq!(pairs[1].label_0, 0.0);
        let e = read_pairs("p.parquet", Bytes::from_static(b"PAR1 not really")).unwrap_err();
        assert!(e.to_string().contains("p.parquet"), "{e}");
    }
}
