//! Paired embeddings for the diversity split (`prefscope diversity --input`): rows with
//! `text_embedding` and `image_embedding` (arrays of the same width), an optional `id` and an
//! optional `group`, in JSON Lines or Parquet (list columns). Every row is kept or the read
//! fails naming it.

use bytes::Bytes;

use super::lists::read_list_rows;
use crate::error::InputError;

/// The rows, their embeddings row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct EmbeddingPairs {
    pub ids: Vec<String>,
    pub groups: Vec<Option<String>>,
    pub dim: usize,
    pub text: Vec<f64>,
    pub image: Vec<f64>,
}

/// Reads the rows; `name` picks the format (by extension) and names errors.
pub fn read_embedding_pairs(name: &str, bytes: Bytes) -> Result<EmbeddingPairs, InputError> {
    const COLUMNS: [&str; 2] = ["text_embedding", "image_embedding"];
    let mut out = EmbeddingPairs { ids: vec![], groups: vec![], dim: 0, text: vec![], image: vec![] };
    for mut row in read_list_rows(name, bytes, &COLUMNS, &["group"], "paired embeddings")? {
        out.text.extend(row.vector(COLUMNS[0], &mut out.dim, COLUMNS[0])?);
        out.image.extend(row.vector(COLUMNS[1], &mut out.dim, COLUMNS[0])?);
        out.ids.push(row.id);
        out.groups.push(row.texts.remove("group"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_read_and_bad_ones_named() {
        let text = "{\"id\": \"a\", \"group\": \"g\", \"text_embedding\": [1, 0], \"image_embedding\": [0.5, 0.5]}\n\
                    {\"text_embedding\": [0, 1], \"image_embedding\": [1, 1]}\n";
        let p = read_embedding_pairs("e.jsonl", Bytes::from(text)).unwrap();
        assert_eq!(
            (p.dim, p.ids.clone(), p.groups.clone()),
            (2, vec!["a".into(), "2".into()], vec![Some("g".into()), None])
        );
        assert_eq!((p.text, p.image), (vec![1.0, 0.0, 0.0, 1.0], vec![0.5, 0.5, 1.0, 1.0]));
        let ragged = "{\"text_embedding\": [1, 0], \"image_embedding\": [0.5, 0.5]}\n\
                      {\"text_embedding\": [0, 1, 2], \"image_embedding\": [1, 1]}\n";
        let e = read_embedding_pairs("e.jsonl", Bytes::from(ragged)).unwrap_err().to_string();
        assert!(e.contains("row 2") && e.contains("text_embedding"), "{e}");
        let missing = "{\"text_embedding\": [1, 0]}\n";
        let e = read_embedding_pairs("e.jsonl", Bytes::from(missing)).unwrap_err().to_string();
        assert!(e.contains("row 1") && e.contains("image_embedding"), "{e}");
        let csv = read_embedding_pairs("e.csv", Bytes::from("a,b\n")).unwrap_err().to_string();
        assert!(csv.contains("JSON Lines or Parquet"), "{csv}");
    }
}
