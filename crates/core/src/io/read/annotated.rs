//! Labelled pairs with their annotator, for annotator groups (`prefscope groups --input`):
//! `user_id`, `features_0` and `features_1` (arrays of one width: the two items' features),
//! `label_0` (1 when item 0 was preferred, 0 for item 1, 0.5 for a tie), optional `id`; in JSON
//! Lines or Parquet. Every row is kept or the read fails naming it.

use bytes::Bytes;

use super::lists::read_list_rows;
use crate::error::{ErrorKind, InputError};

/// The rows, features row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct AnnotatedRows {
    pub ids: Vec<String>,
    pub users: Vec<String>,
    pub dim: usize,
    pub features_0: Vec<f64>,
    pub features_1: Vec<f64>,
    pub label_0: Vec<f64>,
}

/// Reads the rows; `name` picks the format (by extension) and names errors.
pub fn read_annotated_pairs(name: &str, bytes: Bytes) -> Result<AnnotatedRows, InputError> {
    const FEATURES: [&str; 2] = ["features_0", "features_1"];
    let mut out =
        AnnotatedRows { ids: vec![], users: vec![], dim: 0, features_0: vec![], features_1: vec![], label_0: vec![] };
    for mut row in
        read_list_rows(name, bytes, &["features_0", "features_1", "label_0"], &["user_id"], "annotated pairs")?
    {
        let Some(user) = row.texts.remove("user_id") else {
            return Err(InputError::new(row.at.column("user_id"), ErrorKind::MissingValue));
        };
        out.features_0.extend(row.vector(FEATURES[0], &mut out.dim, FEATURES[0])?);
        out.features_1.extend(row.vector(FEATURES[1], &mut out.dim, FEATURES[0])?);
        let label = match row.columns.remove("label_0").as_deref() {
            Some([l]) if (0.0..=1.0).contains(l) => *l,
            Some(other) => {
                return Err(InputError::new(
                    row.at.column("label_0"),
                    ErrorKind::InvalidValue(format!(
                        "must be one number between 0 and 1 (1: item 0 preferred), got {other:?}"
                    )),
                ))
            }
            None => return Err(InputError::new(row.at.column("label_0"), ErrorKind::MissingValue)),
        };
        out.ids.push(row.id);
        out.users.push(user);
        out.label_0.push(label);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_read_and_bad_ones_named() {
        let text = "{\"user_id\": 7, \"features_0\": [1, 0], \"features_1\": [0, 1], \"label_0\": 1}\n\
                    {\"user_id\": \"b\", \"features_0\": [0.5, 0], \"features_1\": [0, 0.5], \"label_0\": 0.5}\n";
        let r = read_annotated_pairs("a.jsonl", Bytes::from(text)).unwrap();
        assert_eq!((r.users.clone(), r.dim, r.label_0.clone()), (vec!["7".into(), "b".into()], 2, vec![1.0, 0.5]));
        let bad = |text: &str| read_annotated_pairs("a.jsonl", Bytes::from(text.to_string())).unwrap_err().to_string();
        let e = bad("{\"features_0\": [1], \"features_1\": [0], \"label_0\": 1}\n");
        assert!(e.contains("row 1") && e.contains("user_id"), "{e}");
        let e = bad("{\"user_id\": 1, \"features_0\": [1], \"features_1\": [0], \"label_0\": 2}\n");
        assert!(e.contains("label_0") && e.contains("between 0 and 1"), "{e}");
        let e = bad("{\"user_id\": 1, \"features_0\": [1], \"features_1\": [0, 1], \"label_0\": 1}\n");
        assert!(e.contains("features_1"), "{e}");
    }

    #[test]
    fn parquet_fixed_size_lists_float32_labels_and_large_integer_users() {
        use std::sync::Arc;

        use arrow_array::types::Float32Type;
        use arrow_array::{ArrayRef, FixedSizeListArray, Float32Array, RecordBatch, UInt64Array};
        let lists = |v: Vec<[f32; 2]>| {
            Arc::new(FixedSizeListArray::from_iter_primitive::<Float32Type, _, _>(
                v.into_iter().map(|r| Some(r.map(Some))),
                2,
            )) as ArrayRef
        };
        // Two users whose ids differ past 2^53 (f64 would merge them).
        let big = 1u64 << 53;
        let batch = RecordBatch::try_from_iter([
            ("user_id", Arc::new(UInt64Array::from(vec![big + 1, big + 2])) as ArrayRef),
            ("features_0", lists(vec![[1.0, 0.5], [0.25, 0.0]])),
            ("features_1", lists(vec![[0.0, 1.0], [1.0, 1.0]])),
            ("label_0", Arc::new(Float32Array::from(vec![1.0, 0.5])) as ArrayRef),
        ])
        .unwrap();
        let mut bytes = Vec::new();
        let mut w = parquet::arrow::ArrowWriter::try_new(&mut bytes, batch.schema(), None).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        let r = read_annotated_pairs("a.parquet", Bytes::from(bytes)).unwrap();
        assert_eq!(r.users, vec![(big + 1).to_string(), (big + 2).to_string()]);
        assert_eq!((r.dim, r.features_0.clone(), r.label_0.clone()), (2, vec![1.0, 0.5, 0.25, 0.0], vec![1.0, 0.5]));
    }
}
