//! The readers: the same data in JSON Lines, CSV and Parquet reads to the same table, and
//! every class of bad input fails with its error kind at its file, row and column.

use std::sync::Arc;

use arrow_array::builder::{Float64Builder, ListBuilder, StringBuilder};
use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use bytes::Bytes;
use prefscope_core::io::read::{read_preferences, Format, Input, Preferences};
use prefscope_core::{DpoTable, ErrorKind, InputError};

fn read(name: &str, bytes: impl Into<Bytes>) -> Result<Preferences, InputError> {
    read_preferences(Input::Bytes { name, bytes: bytes.into() }, None, &mut |_| {})
}

fn dpo(name: &str, bytes: impl Into<Bytes>) -> DpoTable {
    match read(name, bytes).unwrap() {
        Preferences::Dpo(t) => t,
        other => panic!("expected DPO data, got {other:?}"),
    }
}

#[track_caller]
fn err(name: &str, bytes: impl Into<Bytes>) -> InputError {
    read(name, bytes).expect_err("input should be rejected")
}

#[track_caller]
fn assert_at(e: &InputError, row: Option<u64>, column: Option<&str>) {
    assert_eq!(e.location.row, row, "{e}");
    assert_eq!(e.location.column, column, "{e}");
}

const JSONL: &str = r#"{"id": 1, "prompt": "p", "chosen": "a b", "rejected": "c", "policy_chosen_logps": -1.5, "policy_rejected_logps": -2.0, "reference_chosen_logps": -1.75, "reference_rejected_logps": -1.5, "policy_chosen_token_logps": [-1.0, -0.5], "reference_chosen_token_logps": [-1.0, -0.75], "chosen_tokens": ["a", " b"], "preference_share": 0.75}

{"id": "two", "policy_chosen_logps": -3.0, "policy_rejected_logps": -1.0, "reference_chosen_logps": -2.0, "reference_rejected_logps": -1.0, "chosen_length": 4, "rejected_length": 2}
"#;

const CSV: &str = "id,prompt,chosen,rejected,policy_chosen_logps,policy_rejected_logps,reference_chosen_logps,reference_rejected_logps,policy_chosen_token_logps,reference_chosen_token_logps,chosen_tokens,preference_share,chosen_length,rejected_length
1,p,a b,c,-1.5,-2.0,-1.75,-1.5,\"[-1.0, -0.5]\",\"[-1.0, -0.75]\",\"[\"\"a\"\", \"\" b\"\"]\",0.75,,
two,,,,-3,-1,-2,-1,,,,,4,2
";

/// The same two rows as a Parquet file, with list columns for the token arrays.
fn parquet_bytes(mutate: impl FnOnce(&mut Vec<(&'static str, ArrayRef)>)) -> Vec<u8> {
    let mut tokens = ListBuilder::new(Float64Builder::new());
    tokens.values().append_slice(&[-1.0, -0.5]);
    tokens.append(true);
    tokens.append(false);
    let mut ref_tokens = ListBuilder::new(Float64Builder::new());
    ref_tokens.values().append_slice(&[-1.0, -0.75]);
    ref_tokens.append(true);
    ref_tokens.append(false);
    let mut strings = ListBuilder::new(StringBuilder::new());
    strings.values().append_value("a");
    strings.values().append_value(" b");
    strings.append(true);
    strings.append(false);
    let mut cols: Vec<(&'static str, ArrayRef)> = vec![
        ("id", Arc::new(StringArray::from(vec!["1", "two"]))),
        ("prompt", Arc::new(StringArray::from(vec![Some("p"), None]))),
        ("chosen", Arc::new(StringArray::from(vec![Some("a b"), None]))),
        ("rejected", Arc::new(StringArray::from(vec![Some("c"), None]))),
        ("policy_chosen_logps", Arc::new(Float64Array::from(vec![-1.5, -3.0]))),
        ("policy_rejected_logps", Arc::new(Float64Array::from(vec![-2.0, -1.0]))),
        ("reference_chosen_logps", Arc::new(Float64Array::from(vec![-1.75, -2.0]))),
        ("reference_rejected_logps", Arc::new(Float64Array::from(vec![-1.5, -1.0]))),
        ("policy_chosen_token_logps", Arc::new(tokens.finish())),
        ("reference_chosen_token_logps", Arc::new(ref_tokens.finish())),
        ("chosen_tokens", Arc::new(strings.finish())),
        ("preference_share", Arc::new(Float64Array::from(vec![Some(0.75), None]))),
        ("chosen_length", Arc::new(Int64Array::from(vec![None, Some(4)]))),
        ("rejected_length", Arc::new(Int64Array::from(vec![None, Some(2)]))),
    ];
    mutate(&mut cols);
    let batch = RecordBatch::try_from_iter(cols).unwrap();
    let mut out = Vec::new();
    let mut w = parquet::arrow::ArrowWriter::try_new(&mut out, batch.schema(), None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    out
}

fn check_table(t: &DpoTable) {
    assert_eq!(t.id, vec!["1", "two"]);
    assert_eq!(t.prompt.to_vec(), vec![Some("p".to_string()), None]);
    assert_eq!(t.policy_chosen_logps, vec![-1.5, -3.0]);
    assert_eq!(t.reference_rejected_logps, vec![-1.5, -1.0]);
    // Row 1's lengths come from its token arrays, row 2's from its columns.
    assert_eq!(t.chosen_length.to_vec(), vec![Some(2), Some(4)]);
    assert_eq!(t.rejected_length.to_vec(), vec![None, Some(2)]);
    assert_eq!(t.preference_share.to_vec(), vec![Some(0.75), None]);
    assert_eq!(t.chosen_tokens.offsets().to_vec(), vec![0, 2, 2]);
    assert_eq!(t.chosen_tokens.policy, vec![-1.0, -0.5]);
    assert_eq!(t.chosen_tokens.reference, vec![-1.0, -0.75]);
    assert_eq!(t.chosen_tokens.tokens.get(0), Some(&vec!["a".to_string(), " b".to_string()]));
    assert!(!t.rejected_tokens.any());
}

#[test]
fn jsonl_csv_and_parquet_read_to_the_same_table() {
    let a = dpo("a.jsonl", JSONL);
    let b = dpo("b.csv", CSV);
    let c = dpo("c.parquet", parquet_bytes(|_| {}));
    for t in [&a, &b, &c] {
        check_table(t);
    }
    assert_eq!(a.record(0), c.record(0));
    assert_eq!(b.record(1), c.record(1));
}

#[test]
fn records_round_trip_through_serde() {
    let t = dpo("a.jsonl", JSONL);
    let line = serde_json::to_string(&t.record(0)).unwrap();
    let back = dpo("again.jsonl", format!("{line}\n"));
    assert_eq!(back.record(0), t.record(0));
}

#[test]
fn diffusion_rows_are_recognised_by_their_columns() {
    let text = "id,model_mse_chosen,model_mse_rejected,reference_mse_chosen,reference_mse_rejected\np,0.1,0.2,0.15,0.15\np,0.1,0.3,0.1,0.1\n";
    match read("d.csv", text).unwrap() {
        Preferences::Diffusion(t) => assert_eq!(t.len(), 2),
        other => panic!("{other:?}"),
    }
    let e = err(
        "d.csv",
        "id,model_mse_chosen,model_mse_rejected,reference_mse_chosen,reference_mse_rejected\np,-0.1,0.2,0.1,0.1\n",
    );
    assert!(matches!(e.kind, ErrorKind::InvalidValue(_)));
    assert_at(&e, Some(1), Some("model_mse_chosen"));
}

fn replace(line_from: &str, to: &str) -> String {
    assert!(JSONL.contains(line_from), "{line_from}");
    JSONL.replacen(line_from, to, 1)
}

#[test]
fn jsonl_bad_inputs_are_located() {
    let e = err("x.jsonl", replace(r#""policy_rejected_logps": -1.0, "#, ""));
    assert_eq!(e.kind, ErrorKind::MissingColumn);
    assert_at(&e, Some(2), Some("policy_rejected_logps"));
    assert_eq!(e.location.line, Some(3), "blank line 2 is skipped but counted");

    let e = err("x.jsonl", replace(r#""policy_chosen_logps": -1.5"#, r#""policy_chosen_logps": "-1.5""#));
    assert!(matches!(e.kind, ErrorKind::WrongType { expected: "a number", .. }), "{e}");
    assert_at(&e, Some(1), Some("policy_chosen_logps"));

    let e = err("x.jsonl", replace(r#""reference_rejected_logps": -1.0"#, r#""reference_rejected_logps": NaN"#));
    assert_eq!(e.kind, ErrorKind::NonFinite("NaN".into()));
    assert_at(&e, Some(2), Some("reference_rejected_logps"));

    let e = err("x.jsonl", replace(r#""policy_rejected_logps": -2.0"#, r#""policy_rejected_logps": -Infinity"#));
    assert_eq!(e.kind, ErrorKind::NonFinite("-inf".into()));
    assert_at(&e, Some(1), Some("policy_rejected_logps"));

    let e = err("x.jsonl", replace(r#""policy_chosen_logps": -3.0"#, r#""policy_chosen_logps": null"#));
    assert_eq!(e.kind, ErrorKind::MissingValue);
    assert_at(&e, Some(2), Some("policy_chosen_logps"));

    let e = err("x.jsonl", replace(r#""chosen_length": 4"#, r#""chosen_length": -4"#));
    assert_eq!(e.kind, ErrorKind::NegativeLength(-4));
    assert_at(&e, Some(2), Some("chosen_length"));

    let e = err(
        "x.jsonl",
        replace(r#""reference_chosen_token_logps": [-1.0, -0.75]"#, r#""reference_chosen_token_logps": [-1.75]"#),
    );
    assert_eq!(e.kind, ErrorKind::Ragged { len: 1, other: "policy_chosen_token_logps".into(), other_len: 2 });
    assert_at(&e, Some(1), Some("reference_chosen_token_logps"));

    let e = err("x.jsonl", replace(r#""chosen_tokens": ["a", " b"]"#, r#""chosen_tokens": ["a"]"#));
    assert!(matches!(e.kind, ErrorKind::Ragged { len: 1, other_len: 2, .. }), "{e}");
    assert_at(&e, Some(1), Some("chosen_tokens"));

    let e = err(
        "x.jsonl",
        replace(r#""policy_chosen_token_logps": [-1.0, -0.5]"#, r#""policy_chosen_token_logps": [-1.0, NaN]"#),
    );
    assert_eq!(e.kind, ErrorKind::NonFinite("NaN".into()));
    assert_at(&e, Some(1), Some("policy_chosen_token_logps"));

    let e = err(
        "x.jsonl",
        replace(r#""policy_chosen_token_logps": [-1.0, -0.5]"#, r#""policy_chosen_token_logps": [-1.0, -0.25]"#),
    );
    assert!(matches!(e.kind, ErrorKind::TokenSumMismatch { .. }), "{e}");
    assert_at(&e, Some(1), Some("policy_chosen_token_logps"));

    let e = err("x.jsonl", replace(r#""preference_share": 0.75"#, r#""preference_share": 1.5"#));
    assert!(matches!(e.kind, ErrorKind::InvalidValue(_)));
    assert_at(&e, Some(1), Some("preference_share"));

    let cut = &JSONL[..JSONL.len() - 20];
    let e = err("x.jsonl", cut.to_string());
    assert!(matches!(e.kind, ErrorKind::Truncated(_)), "{e}");
    assert_at(&e, Some(2), None);

    let e = err("x.jsonl", replace(r#"{"id": "two","#, r#"{"id": "two",,"#));
    assert!(matches!(e.kind, ErrorKind::Malformed { format: "JSON Lines", .. }), "{e}");
    assert_at(&e, Some(2), None);

    assert_eq!(err("x.jsonl", "\n\n").kind, ErrorKind::Empty);
    assert!(matches!(err("x.txt", "").kind, ErrorKind::UnknownFormat(_)));
}

/// Removes one column from every record of a CSV text.
fn drop_csv_column(text: &str, column: &str) -> String {
    let mut r = csv::Reader::from_reader(text.as_bytes());
    let headers = r.headers().unwrap().clone();
    let k = headers.iter().position(|h| h == column).unwrap();
    let mut w = csv::Writer::from_writer(Vec::new());
    let keep = |rec: &csv::StringRecord| {
        rec.iter().enumerate().filter(|(i, _)| *i != k).map(|(_, v)| v.to_string()).collect::<Vec<_>>()
    };
    w.write_record(keep(&headers)).unwrap();
    for rec in r.records() {
        w.write_record(keep(&rec.unwrap())).unwrap();
    }
    String::from_utf8(w.into_inner().unwrap()).unwrap()
}

#[test]
fn csv_bad_inputs_are_located() {
    let e = err("x.csv", drop_csv_column(CSV, "reference_rejected_logps"));
    assert_eq!(e.kind, ErrorKind::MissingColumn);
    assert_at(&e, None, Some("reference_rejected_logps"));

    let e = err("x.csv", drop_csv_column(CSV, "reference_chosen_logps"));
    assert_eq!(e.kind, ErrorKind::MissingColumn);
    assert_at(&e, Some(2), Some("reference_chosen_logps"));

    let e = err("x.csv", CSV.replacen("two,,,,-3,", "two,,,,abc,", 1));
    assert!(matches!(e.kind, ErrorKind::WrongType { .. }), "{e}");
    assert_at(&e, Some(2), Some("policy_chosen_logps"));
    assert_eq!(e.location.line, Some(3));

    let e = err("x.csv", CSV.replacen("two,,,,-3,", "two,,,,nan,", 1));
    assert_eq!(e.kind, ErrorKind::NonFinite("NaN".into()));
    assert_at(&e, Some(2), Some("policy_chosen_logps"));

    let e = err("x.csv", CSV.replacen("two,,,,-3,-1,", "two,,,,-3,inf,", 1));
    assert_eq!(e.kind, ErrorKind::NonFinite("inf".into()));
    assert_at(&e, Some(2), Some("policy_rejected_logps"));

    let e = err("x.csv", CSV.replacen(",4,2", ",4,-2", 1));
    assert_eq!(e.kind, ErrorKind::NegativeLength(-2));
    assert_at(&e, Some(2), Some("rejected_length"));

    let e = err("x.csv", CSV.replacen(",4,2", ",4.5,2", 1));
    assert!(matches!(e.kind, ErrorKind::WrongType { expected: "an integer", .. }), "{e}");

    let e = err("x.csv", CSV.replacen("\"[-1.0, -0.75]\"", "\"[-1.0, -0.75, -0.1]\"", 1));
    assert!(matches!(e.kind, ErrorKind::Ragged { len: 3, other_len: 2, .. }), "{e}");
    assert_at(&e, Some(1), Some("reference_chosen_token_logps"));

    let e = err("x.csv", CSV.replacen("\"[-1.0, -0.5]\"", "\"[-1.0, oops]\"", 1));
    assert!(matches!(e.kind, ErrorKind::WrongType { .. }), "{e}");
    assert_at(&e, Some(1), Some("policy_chosen_token_logps"));

    let e = err("x.csv", CSV.replacen("two,,,,-3,", "two,,,-3,", 1));
    assert!(matches!(e.kind, ErrorKind::Malformed { format: "CSV", .. }), "{e}");
    assert_at(&e, Some(2), None);

    let cut = CSV.trim_end().rsplit_once(',').unwrap().0.rsplit_once(',').unwrap().0.to_string();
    let e = err("x.csv", cut);
    assert!(matches!(e.kind, ErrorKind::Truncated(_)), "{e}");
    assert_at(&e, Some(2), None);

    let e = err("x.csv", CSV.lines().next().unwrap().to_string() + "\n");
    assert_eq!(e.kind, ErrorKind::Empty);
}

#[test]
fn parquet_bad_inputs_are_located() {
    let good = parquet_bytes(|_| {});
    let e = err("x.parquet", good[..good.len() - 10].to_vec());
    assert!(matches!(e.kind, ErrorKind::Truncated(_)), "{e}");
    assert_at(&e, None, None);

    let mut garbage = good.clone();
    let mid = garbage.len() / 2;
    garbage.truncate(mid);
    garbage.extend_from_slice(&good[good.len() - 8..]);
    let e = err("x.parquet", garbage);
    assert!(matches!(e.kind, ErrorKind::Truncated(_) | ErrorKind::Malformed { .. }), "{e}");

    let e = err("x.parquet", parquet_bytes(|c| c.retain(|(n, _)| *n != "policy_rejected_logps")));
    assert_eq!(e.kind, ErrorKind::MissingColumn);
    assert_at(&e, None, Some("policy_rejected_logps"));

    // With the token column present the file may omit the sequence column, but then a row
    // without token arrays has neither.
    let e = err("x.parquet", parquet_bytes(|c| c.retain(|(n, _)| *n != "policy_chosen_logps")));
    assert_eq!(e.kind, ErrorKind::MissingColumn);
    assert_at(&e, Some(2), Some("policy_chosen_logps"));

    let e = err("x.parquet", parquet_bytes(|c| c[5].1 = Arc::new(StringArray::from(vec!["-2.0", "-1.0"]))));
    assert!(matches!(e.kind, ErrorKind::WrongType { .. }), "{e}");
    assert_at(&e, Some(1), Some("policy_rejected_logps"));

    let e = err("x.parquet", parquet_bytes(|c| c[6].1 = Arc::new(Float64Array::from(vec![-1.75, f64::NAN]))));
    assert_eq!(e.kind, ErrorKind::NonFinite("NaN".into()));
    assert_at(&e, Some(2), Some("reference_chosen_logps"));

    let e = err("x.parquet", parquet_bytes(|c| c[12].1 = Arc::new(Int64Array::from(vec![None, Some(-1)]))));
    assert_eq!(e.kind, ErrorKind::NegativeLength(-1));
    assert_at(&e, Some(2), Some("chosen_length"));

    // Row 1 has token arrays, so their sum stands in for a null sequence value.
    let t = dpo("x.parquet", parquet_bytes(|c| c[4].1 = Arc::new(Float64Array::from(vec![None, Some(-3.0)]))));
    assert_eq!(t.policy_chosen_logps, vec![-1.5, -3.0]);
    let e = err("x.parquet", parquet_bytes(|c| c[4].1 = Arc::new(Float64Array::from(vec![Some(-1.5), None]))));
    assert_eq!(e.kind, ErrorKind::MissingValue);
    assert_at(&e, Some(2), Some("policy_chosen_logps"));

    let e = err(
        "x.parquet",
        parquet_bytes(|c| {
            let mut b = ListBuilder::new(Float64Builder::new());
            b.values().append_slice(&[-1.0]);
            b.append(true);
            b.append(false);
            c[9].1 = Arc::new(b.finish());
        }),
    );
    assert_eq!(e.kind, ErrorKind::Ragged { len: 1, other: "policy_chosen_token_logps".into(), other_len: 2 });
    assert_at(&e, Some(1), Some("reference_chosen_token_logps"));
}

#[test]
fn a_row_missing_a_sequence_value_is_filled_from_its_tokens() {
    let text = JSONL.replacen(r#""policy_chosen_logps": -1.5, "#, "", 1);
    let t = dpo("x.jsonl", text);
    assert_eq!(t.policy_chosen_logps[0], -1.5);
}

#[test]
fn format_comes_from_the_extension_unless_given() {
    assert_eq!(Format::from_name("a/b.PARQUET").unwrap(), Format::Parquet);
    assert_eq!(Format::from_name("x.ndjson").unwrap(), Format::Jsonl);
    let t = read_preferences(Input::Bytes { name: "stdin", bytes: Bytes::from(CSV) }, Some(Format::Csv), &mut |_| {});
    assert!(t.is_ok());
}

/// Parquet batches without token arrays take the bulk path; it must give the row path's table
/// and leave error reporting to the row path.
#[test]
fn parquet_bulk_path_matches_the_row_path() {
    let plain = |c: &mut Vec<(&'static str, ArrayRef)>| {
        c.retain(|(n, _)| !n.contains("token"));
    };
    let bulk = dpo("bulk.parquet", parquet_bytes(plain));
    let text = JSONL
        .replacen(r#""policy_chosen_token_logps": [-1.0, -0.5], "reference_chosen_token_logps": [-1.0, -0.75], "chosen_tokens": ["a", " b"], "#, "", 1);
    let rows = dpo("rows.jsonl", text);
    for i in 0..2 {
        assert_eq!(bulk.record(i), rows.record(i), "row {i}");
    }
    assert_eq!(bulk.chosen_tokens.offsets().to_vec(), vec![0, 0, 0]);
    assert!(!bulk.chosen_tokens.any() && bulk.rejected.get(1).is_none());

    let e = err(
        "x.parquet",
        parquet_bytes(|c| {
            plain(c);
            c[7].1 = Arc::new(Float64Array::from(vec![-1.5, f64::INFINITY]));
        }),
    );
    assert_eq!(e.kind, ErrorKind::NonFinite("inf".into()));
    assert_at(&e, Some(2), Some("reference_rejected_logps"));
    let e = err(
        "x.parquet",
        parquet_bytes(|c| {
            plain(c);
            let share = c.iter().position(|(n, _)| *n == "preference_share").unwrap();
            c[share].1 = Arc::new(Float64Array::from(vec![Some(0.5), Some(-0.1)]));
        }),
    );
    assert!(matches!(e.kind, ErrorKind::InvalidValue(_)));
    assert_at(&e, Some(2), Some("preference_share"));
}

#[test]
fn a_leading_byte_order_mark_is_skipped_in_text_formats() {
    let bom = |text: &str| [b"\xEF\xBB\xBF".as_slice(), text.as_bytes()].concat();
    check_table(&dpo("bom.jsonl", bom(JSONL)));
    check_table(&dpo("bom.csv", bom(CSV)));
}

#[test]
fn a_runaway_line_is_refused_by_row_before_it_is_buffered() {
    let limit = prefscope_core::io::read::MAX_LINE_BYTES;
    let first = JSONL.lines().next().unwrap();
    // A valid first row, then a second "row" of one unterminated string past the limit.
    let mut text = format!("{first}\n{{\"id\": \"");
    text.push_str(&"x".repeat(limit + 1));
    let e = err("long.jsonl", text.clone());
    assert_eq!(e.location.row, Some(2), "{e}");
    assert!(e.to_string().contains("64 MiB"), "{e}");
    let csv_head = CSV.lines().next().unwrap();
    let e = err("long.csv", format!("{csv_head}\n{}", "y".repeat(limit + 1)));
    assert!(e.to_string().contains("64 MiB"), "{e}");
}

/// Reads `bytes` through [`ParquetPieces`], fetching only what it asks for, as the browser does.
fn read_in_pieces(name: &str, bytes: &[u8]) -> Result<Preferences, InputError> {
    use prefscope_core::io::read::ParquetPieces;
    let len = bytes.len() as u64;
    let tail = &bytes[bytes.len().saturating_sub(8)..];
    let footer = ParquetPieces::metadata_range(name, len, tail)?;
    let mut pieces =
        ParquetPieces::open(name, len, footer.start, Bytes::copy_from_slice(&bytes[footer.start as usize..]))?;
    for (i, range) in pieces.row_groups().into_iter().enumerate() {
        let piece = Bytes::copy_from_slice(&bytes[range.start as usize..range.end as usize]);
        pieces.push_row_group(i, range.start, piece, &mut |_| {})?;
    }
    pieces.finish()
}

#[test]
fn parquet_read_one_row_group_at_a_time_equals_the_whole_file() {
    // Many row groups of plain columns (the bulk path), and the token-array file (row by row).
    let n = 10_000;
    let ids: Vec<String> = (0..n).map(|i| format!("p{i}")).collect();
    let value = |k: usize| {
        Arc::new(Float64Array::from_iter_values((0..n).map(|i| -(((i * 7 + k * 13) % 997) as f64) / 7.0))) as ArrayRef
    };
    let batch = RecordBatch::try_from_iter([
        ("id", Arc::new(StringArray::from(ids)) as ArrayRef),
        ("policy_chosen_logps", value(1)),
        ("policy_rejected_logps", value(2)),
        ("reference_chosen_logps", value(3)),
        ("reference_rejected_logps", value(4)),
    ])
    .unwrap();
    let props = parquet::file::properties::WriterProperties::builder().set_max_row_group_row_count(Some(1_000)).build();
    let mut file = Vec::new();
    let mut w = parquet::arrow::ArrowWriter::try_new(&mut file, batch.schema(), Some(props)).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    let whole = read("many.parquet", file.clone()).unwrap();
    assert_eq!(read_in_pieces("many.parquet", &file).unwrap(), whole);
    if let Preferences::Dpo(t) = &whole {
        assert_eq!(t.len(), n);
    }
    let small = parquet_bytes(|_| {});
    assert_eq!(read_in_pieces("t.parquet", &small).unwrap(), read("t.parquet", small.clone()).unwrap());
    // Bad input fails with the whole-file reader's messages.
    let e = read_in_pieces("cut.parquet", &small[..small.len() - 3]).unwrap_err();
    assert!(e.to_string().contains("cut.parquet"), "{e}");
    let missing = parquet_bytes(|cols| cols.retain(|(n, _)| *n != "policy_chosen_logps"));
    assert_eq!(read_in_pieces("m.parquet", &missing).unwrap_err().kind, err("m.parquet", missing).kind);
}
