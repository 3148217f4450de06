//! A scoring manifest from Arrow: `prompt`, `image` and optional `group`, `id`, `image_name`.
//! `image` is a path (a string column), the encoded file itself (a binary column: Pick-a-Pic's
//! `jpg_0`), or Hugging Face datasets' `Image` feature (a struct of `bytes` and `path`). Every
//! row is kept or the read fails naming the row and column.

use std::path::PathBuf;

use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, Int64Type};
use arrow_array::{Array, ArrayRef, RecordBatch, RecordBatchReader};
use arrow_schema::DataType;
use prefscope_core::io::record::ManifestRow;
use prefscope_core::{ErrorKind, InputError, Location};

/// Where a row's image is.
pub enum ImageSource {
    Path(PathBuf),
    Bytes(Vec<u8>),
}

/// The rows, and each row's image.
pub struct ManifestTable {
    pub rows: Vec<ManifestRow>,
    pub images: Vec<ImageSource>,
}

/// Text of element `i`; `None` for a null, `Err` for a column that is not text.
fn text(array: &dyn Array, i: usize) -> Result<Option<String>, String> {
    // A column of nulls only (pandas' all-None column) is Arrow's Null type, whose `is_null`
    // answers false.
    if array.is_null(i) || array.data_type() == &DataType::Null {
        return Ok(None);
    }
    Ok(Some(match array.data_type() {
        DataType::Utf8 => array.as_string::<i32>().value(i).to_string(),
        DataType::LargeUtf8 => array.as_string::<i64>().value(i).to_string(),
        DataType::Utf8View => array.as_string_view().value(i).to_string(),
        DataType::Int64 => array.as_primitive::<Int64Type>().value(i).to_string(),
        DataType::Int32 => array.as_primitive::<Int32Type>().value(i).to_string(),
        other => return Err(format!("a column of type {other}, where text was expected")),
    }))
}

/// Bytes of element `i` of a binary column.
fn binary(array: &dyn Array, i: usize) -> Option<Vec<u8>> {
    if array.is_null(i) || array.data_type() == &DataType::Null {
        return None;
    }
    Some(match array.data_type() {
        DataType::Binary => array.as_binary::<i32>().value(i).to_vec(),
        DataType::LargeBinary => array.as_binary::<i64>().value(i).to_vec(),
        DataType::BinaryView => array.as_binary_view().value(i).to_vec(),
        _ => return None,
    })
}

fn image(array: &ArrayRef, i: usize) -> Result<Option<ImageSource>, String> {
    match array.data_type() {
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => Ok(binary(array, i).map(ImageSource::Bytes)),
        DataType::Struct(_) => {
            let s = array.as_struct();
            if s.is_null(i) {
                return Ok(None);
            }
            if let Some(bytes) = s.column_by_name("bytes").and_then(|b| binary(b, i)) {
                return Ok(Some(ImageSource::Bytes(bytes)));
            }
            match s.column_by_name("path") {
                Some(p) => Ok(text(p, i)?.filter(|p| !p.is_empty()).map(|p| ImageSource::Path(p.into()))),
                None => Err("a struct column without `bytes` or `path` (Hugging Face's Image feature has both)".into()),
            }
        }
        DataType::Null => Ok(None),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            Ok(text(array, i)?.filter(|p| !p.is_empty()).map(|p| ImageSource::Path(p.into())))
        }
        other => Err(format!("a column of type {other}, where paths (text) or image bytes (binary) were expected")),
    }
}

/// Reads every batch of `reader`; `name` names the source in errors, `root` resolves relative
/// image paths.
pub fn read(
    name: &str,
    reader: impl RecordBatchReader,
    root: Option<&std::path::Path>,
) -> Result<ManifestTable, String> {
    let schema = reader.schema();
    let find = |column: &str| schema.index_of(column).ok();
    let (prompt, image_col) = (find("prompt"), find("image"));
    for (column, found) in [("prompt", prompt), ("image", image_col)] {
        if found.is_none() {
            return Err(InputError::new(Location::file(name).column(column), ErrorKind::MissingColumn).to_string());
        }
    }
    let (group, id, image_name) = (find("group"), find("id"), find("image_name"));
    let mut out = ManifestTable { rows: Vec::new(), images: Vec::new() };
    for batch in reader {
        let batch: RecordBatch = batch.map_err(|e| format!("{name}: cannot read the Arrow stream: {e}"))?;
        let column = |c: Option<usize>| c.map(|c| batch.column(c).clone());
        let (prompts, images) = (column(prompt), column(image_col));
        let (groups, ids, names) = (column(group), column(id), column(image_name));
        for i in 0..batch.num_rows() {
            let row = out.rows.len() as u64 + 1;
            let at = |column: &'static str| Location::file(name).row(row).column(column);
            let bad =
                |column: &'static str, e: String| InputError::new(at(column), ErrorKind::InvalidValue(e)).to_string();
            let missing = |column: &'static str| InputError::new(at(column), ErrorKind::MissingValue).to_string();
            let optional = |c: &Option<ArrayRef>, column: &'static str| match c {
                Some(c) => text(c, i).map(|t| t.filter(|t| !t.is_empty())).map_err(|e| bad(column, e)),
                None => Ok(None),
            };
            let prompt = prompts.as_ref().map(|p| text(p, i)).transpose().map_err(|e| bad("prompt", e))?.flatten();
            let prompt = prompt.filter(|p| !p.is_empty()).ok_or_else(|| missing("prompt"))?;
            let source = images.as_ref().map(|c| image(c, i)).transpose().map_err(|e| bad("image", e))?.flatten();
            let source = source.ok_or_else(|| missing("image"))?;
            // Rows name their image as the table gives it (as the command names a manifest's).
            let shown = match (&source, optional(&names, "image_name")?) {
                (_, Some(name)) => name,
                (ImageSource::Path(p), None) => p.display().to_string(),
                (ImageSource::Bytes(_), None) => format!("row {row}"),
            };
            let source = match source {
                ImageSource::Path(p) if p.is_relative() => ImageSource::Path(root.map(|r| r.join(&p)).unwrap_or(p)),
                other => other,
            };
            out.rows.push(ManifestRow {
                prompt,
                image: shown,
                group: optional(&groups, "group")?,
                id: optional(&ids, "id")?,
            });
            out.images.push(source);
        }
    }
    if out.rows.is_empty() {
        return Err(InputError::new(Location::file(name), ErrorKind::Empty).to_string());
    }
    Ok(out)
}
