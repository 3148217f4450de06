//! Scoring manifests (docs/DESIGN.md "Scoring manifest"): CSV with a header, or JSON Lines,
//! with `prompt`, `image` and optional `group` and `id`. Every row is kept or the read fails
//! naming it.

use serde_json::Value;

use super::{check_line_length, json_lines, strip_bom, Format};
use crate::error::{ErrorKind, InputError, Location};
use crate::io::record::ManifestRow;

/// Reads a manifest from its bytes; `name` picks the format (by extension) and names errors.
pub fn read_manifest(name: &str, bytes: &[u8]) -> Result<Vec<ManifestRow>, InputError> {
    let rows = match Format::from_name(name)? {
        Format::Csv => csv_rows(name, bytes)?,
        Format::Jsonl => jsonl_rows(name, bytes)?,
        Format::Parquet => {
            return Err(InputError::new(
                Location::file(name),
                ErrorKind::InvalidValue("a scoring manifest is CSV or JSON Lines".into()),
            ))
        }
    };
    if rows.is_empty() {
        return Err(InputError::new(Location::file(name), ErrorKind::Empty));
    }
    Ok(rows)
}

fn required(value: Option<String>, at: &Location, column: &'static str) -> Result<String, InputError> {
    match value {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(InputError::new(at.clone().column(column), ErrorKind::MissingValue)),
    }
}

fn csv_rows(name: &str, bytes: &[u8]) -> Result<Vec<ManifestRow>, InputError> {
    let mut reader = csv::ReaderBuilder::new().flexible(false).from_reader(strip_bom(bytes));
    let malformed = |at: Location, e: csv::Error| {
        InputError::new(at, ErrorKind::Malformed { format: "CSV", message: e.to_string() })
    };
    let headers = reader.headers().map_err(|e| malformed(Location::file(name), e))?.clone();
    let index = |column: &str| headers.iter().position(|h| h.trim() == column);
    let (prompt, image) = (index("prompt"), index("image"));
    for (column, found) in [("prompt", prompt), ("image", image)] {
        if found.is_none() {
            return Err(InputError::new(Location::file(name).column(column), ErrorKind::MissingColumn));
        }
    }
    let (group, id) = (index("group"), index("id"));
    let mut rows = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let at = Location::file(name).row(i as u64 + 1);
        let record = record.map_err(|e| malformed(at.clone(), e))?;
        check_line_length("CSV", record.as_slice().len(), &at)?;
        let get = |c: Option<usize>| c.and_then(|c| record.get(c)).map(str::to_string);
        let optional = |c: Option<usize>| get(c).filter(|v| !v.is_empty());
        rows.push(ManifestRow {
            prompt: required(get(prompt), &at, "prompt")?,
            image: required(get(image), &at, "image")?,
            group: optional(group),
            id: optional(id),
        });
    }
    Ok(rows)
}

fn jsonl_rows(name: &str, bytes: &[u8]) -> Result<Vec<ManifestRow>, InputError> {
    let mut rows = Vec::new();
    for (at, value) in json_lines(name, bytes)? {
        let field = |column: &'static str| -> Result<Option<String>, InputError> {
            match value.get(column) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(Value::Number(n)) if column != "prompt" => Ok(Some(n.to_string())),
                Some(other) => Err(InputError::new(
                    at.clone().column(column),
                    ErrorKind::WrongType { expected: "a string", found: other.to_string() },
                )),
            }
        };
        rows.push(ManifestRow {
            prompt: required(field("prompt")?, &at, "prompt")?,
            image: required(field("image")?, &at, "image")?,
            group: field("group")?.filter(|v| !v.is_empty()),
            id: field("id")?.filter(|v| !v.is_empty()),
        });
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_and_jsonl_agree() {
        let csv = b"prompt,image,group\na cat,cat.png,g1\n\"a, dog\",dog.png,\n";
        let jsonl = b"{\"prompt\": \"a cat\", \"image\": \"cat.png\", \"group\": \"g1\"}\n\n{\"prompt\": \"a, dog\", \"image\": \"dog.png\"}\n";
        let a = read_manifest("m.csv", csv).unwrap();
        assert_eq!(a, read_manifest("m.jsonl", jsonl).unwrap());
        assert_eq!(a[1].group, None);
    }

    #[test]
    fn bad_rows_are_named() {
        let e = read_manifest("m.csv", b"prompt,image\na,\n").unwrap_err();
        assert_eq!((e.location.row, e.location.column, e.kind), (Some(1), Some("image"), ErrorKind::MissingValue));
        let e = read_manifest("m.csv", b"prompt,picture\na,b\n").unwrap_err();
        assert_eq!(e.kind, ErrorKind::MissingColumn);
        let e =
            read_manifest("m.jsonl", b"{\"prompt\": \"a\", \"image\": \"b\"}\n{\"prompt\": \"a\", \"ima").unwrap_err();
        assert_eq!((e.location.row, e.location.line), (Some(2), Some(2)));
        assert!(matches!(e.kind, ErrorKind::Truncated(_)));
        let e = read_manifest("m.csv", b"prompt,image\na,b,c\n").unwrap_err();
        assert!(matches!(e.kind, ErrorKind::Malformed { .. }), "{e}");
        assert_eq!(read_manifest("m.csv", b"prompt,image\n").unwrap_err().kind, ErrorKind::Empty);
    }

    #[test]
    fn a_byte_order_mark_is_not_part_of_the_first_column() {
        let csv = b"\xEF\xBB\xBFprompt,image\na cat,cat.png\n";
        let jsonl = b"\xEF\xBB\xBF{\"prompt\": \"a cat\", \"image\": \"cat.png\"}\n";
        let want = read_manifest("m.csv", &csv[3..]).unwrap();
        assert_eq!(read_manifest("m.csv", csv).unwrap(), want);
        assert_eq!(read_manifest("m.jsonl", jsonl).unwrap(), want);
    }
}
