//! TRL's unpaired (KTO) layout: the readers, the bad inputs (each located), the report, and
//! KTO per evaluation batch against TRL 1.16's `KTOTrainer` (tests/fixtures/kto_unpaired.json,
//! written by tests/fixtures/kto_unpaired.py).

mod common;

use std::sync::Arc;

use arrow_array::builder::{Float64Builder, ListBuilder};
use arrow_array::{ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray};
use bytes::Bytes;
use common::*;
use prefscope_core::io::read::{read_preferences, Input, Preferences};
use prefscope_core::preference::dpo::unpaired::{batches, kto_rows, KtoParams};
use prefscope_core::preference::report::{report, ReportRequest};
use prefscope_core::{ConfigError, ErrorKind, InputError, UnpairedRecord, UnpairedTable};

fn read(name: &str, bytes: impl Into<Bytes>) -> Result<Preferences, InputError> {
    read_preferences(Input::Bytes { name, bytes: bytes.into() }, None, &mut |_| {})
}

fn unpaired(name: &str, bytes: impl Into<Bytes>) -> UnpairedTable {
    match read(name, bytes).unwrap() {
        Preferences::Unpaired(t) => t,
        other => panic!("expected unpaired rows, got {other:?}"),
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

const JSONL: &str = r#"{"id": "a", "prompt": "p", "completion": " x y", "label": true, "policy_logps": -1.5, "reference_logps": -1.75, "policy_token_logps": [-1.0, -0.5], "reference_token_logps": [-1.0, -0.75], "completion_tokens": [" x", " y"], "batch": 0, "kl_policy_logps": -3.0, "kl_reference_logps": -3.5}
{"id": "b", "prompt": "q", "completion": " z", "label": false, "policy_logps": -2.0, "reference_logps": -1.0, "batch": 0, "kl_policy_logps": -2.0, "kl_reference_logps": -2.25}
{"id": "c", "label": true, "policy_logps": -4.0, "reference_logps": -4.5, "batch": 1, "kl_policy_logps": -1.0, "kl_reference_logps": -0.5}
"#;

const CSV: &str = "id,prompt,completion,label,policy_logps,reference_logps,policy_token_logps,reference_token_logps,completion_tokens,batch,kl_policy_logps,kl_reference_logps
a,p, x y,True,-1.5,-1.75,\"[-1.0, -0.5]\",\"[-1.0, -0.75]\",\"[\"\" x\"\", \"\" y\"\"]\",0,-3.0,-3.5
b,q, z,false,-2.0,-1.0,,,,0,-2.0,-2.25
c,,,1,-4.0,-4.5,,,,1,-1.0,-0.5
";

fn parquet(mutate: impl FnOnce(&mut Vec<(&'static str, ArrayRef)>)) -> Vec<u8> {
    let mut tokens = ListBuilder::new(Float64Builder::new());
    tokens.values().append_slice(&[-1.0, -0.5]);
    tokens.append(true);
    tokens.append(false);
    tokens.append(false);
    let mut ref_tokens = ListBuilder::new(Float64Builder::new());
    ref_tokens.values().append_slice(&[-1.0, -0.75]);
    ref_tokens.append(true);
    ref_tokens.append(false);
    ref_tokens.append(false);
    let mut cols: Vec<(&'static str, ArrayRef)> = vec![
        ("id", Arc::new(StringArray::from(vec!["a", "b", "c"]))),
        ("completion", Arc::new(StringArray::from(vec![Some(" x y"), Some(" z"), None]))),
        ("label", Arc::new(BooleanArray::from(vec![true, false, true]))),
        ("policy_logps", Arc::new(Float64Array::from(vec![-1.5, -2.0, -4.0]))),
        ("reference_logps", Arc::new(Float64Array::from(vec![-1.75, -1.0, -4.5]))),
        ("policy_token_logps", Arc::new(tokens.finish())),
        ("reference_token_logps", Arc::new(ref_tokens.finish())),
        ("batch", Arc::new(Int64Array::from(vec![0, 0, 1]))),
        ("kl_policy_logps", Arc::new(Float64Array::from(vec![-3.0, -2.0, -1.0]))),
        ("kl_reference_logps", Arc::new(Float64Array::from(vec![-3.5, -2.25, -0.5]))),
    ];
    mutate(&mut cols);
    let batch = RecordBatch::try_from_iter(cols).unwrap();
    let mut out = Vec::new();
    let mut w = parquet::arrow::ArrowWriter::try_new(&mut out, batch.schema(), None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    out
}

#[track_caller]
fn check_table(t: &UnpairedTable) {
    assert_eq!(t.id, ["a", "b", "c"]);
    assert_eq!(t.label, [true, false, true]);
    assert_eq!(t.policy_logps, [-1.5, -2.0, -4.0]);
    assert_eq!(t.reference_logps, [-1.75, -1.0, -4.5]);
    assert_eq!(t.batch.to_vec(), [Some(0), Some(0), Some(1)]);
    assert_eq!(t.kl_reference_logps.to_vec(), [Some(-3.5), Some(-2.25), Some(-0.5)]);
    assert_eq!(t.completion.get(0).map(String::as_str), Some(" x y"));
    assert_eq!(t.completion_length.to_vec(), [Some(2), None, None]);
    assert_eq!(&t.tokens.policy[t.tokens.range(0)], &[-1.0, -0.5]);
    assert!(t.tokens.present(0) && !t.tokens.present(1));
}

#[test]
fn jsonl_csv_and_parquet_read_to_the_same_table() {
    let a = unpaired("a.jsonl", JSONL);
    let b = unpaired("b.csv", CSV);
    let c = unpaired("c.parquet", parquet(|_| {}));
    for t in [&a, &b, &c] {
        check_table(t);
    }
    assert_eq!(a.tokens.tokens.get(0).unwrap(), &[" x", " y"]);
    assert_eq!(b.tokens.tokens.get(0).unwrap(), &[" x", " y"]);
}

#[test]
fn records_build_the_same_table() {
    let t = unpaired("a.jsonl", JSONL);
    let rebuilt = UnpairedTable::from_records(
        "a.jsonl",
        JSONL.lines().map(|l| serde_json::from_str::<UnpairedRecord>(l).unwrap()),
    );
    assert_eq!(rebuilt.policy_logps, t.policy_logps);
    assert_eq!(rebuilt.label, t.label);
    assert_eq!(rebuilt.batch, t.batch);
}

fn jsonl_line(row: usize, from: &str, to: &str) -> String {
    let mut lines: Vec<String> = JSONL.lines().map(str::to_string).collect();
    assert!(lines[row].contains(from), "{from}");
    lines[row] = lines[row].replace(from, to);
    lines.join("\n") + "\n"
}

#[test]
fn a_label_that_is_not_boolean_is_located() {
    for bad in [r#""label": "yes""#, r#""label": 2"#, r#""label": 1"#, r#""label": null"#] {
        let e = err("x.jsonl", jsonl_line(1, r#""label": false"#, bad));
        assert_at(&e, Some(2), Some("label"));
        assert_eq!(e.location.file, "x.jsonl");
    }
    let e = err("x.jsonl", jsonl_line(1, r#""label": false, "#, ""));
    assert_at(&e, Some(2), Some("label"));
    assert!(matches!(e.kind, ErrorKind::MissingColumn), "{e}");
    for bad in ["yes", "2", "", "t"] {
        let e = err("x.csv", CSV.replace("b,q, z,false", &format!("b,q, z,{bad}")));
        assert_at(&e, Some(2), Some("label"));
        assert!(e.to_string().contains("x.csv: row 2"), "{e}");
    }
    let e = err("x.parquet", parquet(|c| c[2].1 = Arc::new(Int64Array::from(vec![1, 0, 1]))));
    assert_at(&e, Some(1), Some("label"));
    let e = err("x.parquet", parquet(|c| c[2].1 = Arc::new(BooleanArray::from(vec![Some(true), None, Some(true)]))));
    assert_at(&e, Some(2), Some("label"));
    assert!(matches!(e.kind, ErrorKind::MissingValue), "{e}");
}

#[test]
fn a_missing_label_column_is_a_file_error_for_header_formats() {
    let csv: String = CSV
        .lines()
        .map(|l| {
            let cells: Vec<&str> = l.splitn(5, ',').collect();
            format!("{},{},{},{}", cells[0], cells[1], cells[2], cells[4])
        })
        .collect::<Vec<_>>()
        .join("\n");
    let e = err("x.csv", csv);
    assert_at(&e, None, Some("label"));
    assert!(matches!(e.kind, ErrorKind::MissingColumn));
    let e = err("x.parquet", parquet(|c| c.retain(|(n, _)| *n != "label")));
    assert_at(&e, None, Some("label"));
}

#[test]
fn the_other_bad_inputs_are_located() {
    // Token sums disagree with the sequence value.
    let e = err("x.jsonl", jsonl_line(0, r#""policy_logps": -1.5"#, r#""policy_logps": -9.5"#));
    assert_at(&e, Some(1), Some("policy_token_logps"));
    // Ragged token arrays.
    let e = err("x.jsonl", jsonl_line(0, r#""completion_tokens": [" x", " y"]"#, r#""completion_tokens": [" x"]"#));
    assert_at(&e, Some(1), Some("completion_tokens"));
    // A non-finite value.
    let e = err("x.jsonl", jsonl_line(1, r#""reference_logps": -1.0"#, r#""reference_logps": NaN"#));
    assert_at(&e, Some(2), Some("reference_logps"));
    // A batch that is not a whole number.
    let e = err("x.jsonl", jsonl_line(2, r#""batch": 1"#, r#""batch": 1.5"#));
    assert_at(&e, Some(3), Some("batch"));
    // `batch` in some rows only: the batches would be guessed.
    let e = err("x.jsonl", jsonl_line(2, r#""batch": 1, "#, ""));
    assert_at(&e, Some(3), Some("batch"));
    // One KL value without the other, and KL in some rows only.
    let e = err("x.jsonl", jsonl_line(1, r#", "kl_reference_logps": -2.25"#, ""));
    assert_at(&e, Some(2), Some("kl_reference_logps"));
    let e = err("x.jsonl", jsonl_line(2, r#", "kl_policy_logps": -1.0, "kl_reference_logps": -0.5"#, ""));
    assert_at(&e, Some(3), Some("kl_policy_logps"));
    // A row of a pair in an unpaired file: it has no label.
    let pair = r#"{"policy_chosen_logps": -1, "policy_rejected_logps": -2, "reference_chosen_logps": -1, "reference_rejected_logps": -2}"#;
    let e = err("x.jsonl", format!("{JSONL}{pair}\n"));
    assert_at(&e, Some(4), Some("label"));
}

#[test]
fn pairs_and_unpaired_columns_do_not_mix() {
    let e = err("x.jsonl", jsonl_line(0, r#""id": "a""#, r#""id": "a", "policy_chosen_logps": -1.0"#));
    assert_at(&e, Some(1), Some("policy_chosen_logps"));
    assert!(e.to_string().contains("not both"), "{e}");
    let csv = CSV.replacen("id,", "policy_chosen_logps,id,", 1).replace("\na,", "\n-1,a,").replace("\nb,", "\n-1,b,");
    let csv = csv.replace("\nc,", "\n-1,c,");
    let e = err("x.csv", csv);
    assert_at(&e, None, Some("policy_chosen_logps"));
    // Pairs stay pairs, whatever else they carry.
    let pairs = r#"{"id": 1, "policy_chosen_logps": -1, "policy_rejected_logps": -2, "reference_chosen_logps": -1, "reference_rejected_logps": -2, "completion": "x"}"#;
    assert!(matches!(read("p.jsonl", format!("{pairs}\n")).unwrap(), Preferences::Dpo(_)));
}

#[test]
fn only_kto_takes_unpaired_rows_and_kto_on_pairs_is_unchanged() {
    let data = read("evals/x.jsonl", JSONL).unwrap();
    for loss in ["sigmoid", "ipo", "bco", "simpo", "orpo", "sigmoid,sft"] {
        let request = ReportRequest { objective: loss.into(), ..ReportRequest::default() };
        let e = report(&data, &request).expect_err(loss);
        let ConfigError::Input(e) = &e else { panic!("{e}") };
        assert_eq!(e.location.file, "evals/x.jsonl");
        let text = e.to_string();
        assert!(text.contains("--loss kto") && text.contains(loss), "{text}");
    }
    let request = ReportRequest { objective: "kto".into(), beta: Some(0.5), ..ReportRequest::default() };
    let r = report(&data, &request).unwrap();
    // Batch 0: KL = max(0, mean(0.5, 0.25)) = 0.375; batch 1: max(0, −0.5) = 0.
    let m = r.metrics();
    assert_close(m["kl"], 0.375 / 2.0, "kl");
    assert_close(m["rewards/chosen"], 0.5 * (0.5 * 0.25 + 0.5 * 0.5), "rewards/chosen");
    // β·Δ of b, the only undesirable row: 0.5 · (−1).
    assert_close(m["rewards/rejected"], -0.5, "rewards/rejected");
    assert_close(m["rewards/margins"], 0.5 * 0.25 + 0.5, "rewards/margins");
    assert_close(m["logps/chosen"], 0.5 * (-1.5 + -4.0), "logps/chosen");
    assert!(m.contains_key("calibration/ece") && !m.contains_key("rewards/accuracies"));
    let p = &r.evaluation.pairs;
    assert_eq!(r.ids.as_ref(), ["a", "b", "c"]);
    assert_close(p.margin[0], 0.5 * (0.25 - 0.375), "margin a");
    assert_close(p.margin[2], 0.5 * 0.5, "margin c");
    assert!(p.rejected_reward[0].is_nan() && p.chosen_reward[1].is_nan());
    let sigmoid = |x: f64| 1.0 / (1.0 + (-x).exp());
    assert_close(p.loss[1], sigmoid(0.5 * (-1.0 - 0.375)), "loss b");
    assert_close(m["loss"], p.loss.iter().sum::<f64>() / 3.0, "loss");
    // The per-row table keeps the pair columns; null where a row has no such side.
    let json = r.json();
    assert_eq!(json["pairs"][0]["rejected_reward"], serde_json::Value::Null);
    // Pairs with `--loss kto` still go through the pair path.
    let pairs = r#"{"id": 1, "policy_chosen_logps": -1, "policy_rejected_logps": -2, "reference_chosen_logps": -1.5, "reference_rejected_logps": -1.5}"#;
    let data = read("p.jsonl", format!("{pairs}\n")).unwrap();
    assert!(report(&data, &request).unwrap().metrics().contains_key("ranking/accuracy"));
}

#[test]
fn without_batch_and_kl_columns_the_file_is_one_batch_with_zero_kl() {
    let text: String = JSONL
        .lines()
        .map(|l| {
            let mut v: serde_json::Map<String, serde_json::Value> = serde_json::from_str(l).unwrap();
            for k in ["batch", "kl_policy_logps", "kl_reference_logps"] {
                v.remove(k);
            }
            serde_json::to_string(&v).unwrap() + "\n"
        })
        .collect();
    let t = unpaired("x.jsonl", text);
    let e = kto_rows(&t, &KtoParams { beta: 1.0, ..KtoParams::default() }).unwrap();
    assert_eq!(e.metrics["kl"], 0.0);
    assert_close(e.metrics["rewards/margins"], e.metrics["rewards/chosen"] - e.metrics["rewards/rejected"], "margins");
}

/// The fixture's rows as a table, the way the export callback lays them out.
fn table(rows: &serde_json::Value, with_kl: bool) -> UnpairedTable {
    let records = rows.as_array().unwrap().iter().map(|r| UnpairedRecord {
        id: r["id"].as_str().unwrap().into(),
        label: r["label"].as_bool().unwrap(),
        policy_logps: f(&r["policy_logps"]),
        reference_logps: f(&r["reference_logps"]),
        completion_length: Some(r["length"].as_u64().unwrap() as u32),
        batch: r["batch"].as_i64(),
        kl_policy_logps: with_kl.then(|| f(&r["kl_policy_logps"])),
        kl_reference_logps: with_kl.then(|| f(&r["kl_reference_logps"])),
        ..UnpairedRecord::default()
    });
    UnpairedTable::from_records("fixture", records)
}

#[test]
fn kto_per_batch_matches_trl_1_16_kto_trainer() {
    let fx = fixture("kto_unpaired.json");
    assert_eq!(fx["trl"], "1.16.0");
    let cases = fx["cases"].as_array().unwrap();
    assert!(cases.len() >= 20);
    let (mut clamped, mut one_sided) = (false, false);
    for case in cases {
        let with_kl = case["with_kl"].as_bool().unwrap();
        let t = table(&case["rows"], with_kl);
        let params = KtoParams {
            beta: f(&case["beta"]),
            desirable_weight: f(&case["desirable_weight"]),
            undesirable_weight: f(&case["undesirable_weight"]),
        };
        let eval = kto_rows(&t, &params).unwrap();
        let label = format!("{params:?} kl={with_kl} rows={}", t.len());
        let theirs = case["metrics"].as_object().unwrap();
        // Exactly the metrics TRL logs: a side no batch had is absent from both.
        let ours: Vec<&String> = eval.metrics.keys().collect();
        let mut want: Vec<&String> = theirs.keys().collect();
        want.sort();
        assert_eq!(ours, want, "{label}");
        for (name, value) in theirs {
            assert_close(eval.metrics[name], f(value), &format!("{label} {name}"));
        }
        one_sided |= !theirs.contains_key("rewards/rejected");
        let kl_sum = |rows: &Vec<usize>| -> f64 {
            rows.iter()
                .map(|&i| t.kl_policy_logps.get(i).unwrap_or(&0.0) - t.kl_reference_logps.get(i).unwrap_or(&0.0))
                .sum()
        };
        clamped |= with_kl && batches(&t).iter().any(|rows| kl_sum(rows) < 0.0);
        // The rows' terms average to TRL's evaluation loss.
        assert_close(eval.pairs.loss.iter().sum::<f64>() / t.len() as f64, f(&theirs["loss"]), &label);
    }
    assert!(clamped && one_sided, "the fixture covers a clamped KL and a one-sided evaluation");
}

#[test]
fn the_typed_readers_name_what_a_file_holds_instead() {
    use prefscope_core::io::read::{read_dpo, read_unpaired};
    let dir = std::env::temp_dir().join(format!("prefscope-unpaired-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let rows = dir.join("rows.jsonl");
    let pairs = dir.join("pairs.jsonl");
    std::fs::write(&rows, JSONL).unwrap();
    let pair = r#"{"id": 1, "policy_chosen_logps": -1, "policy_rejected_logps": -2, "reference_chosen_logps": -1, "reference_rejected_logps": -2}"#;
    std::fs::write(&pairs, format!("{pair}\n")).unwrap();
    assert_eq!(read_unpaired(&rows).unwrap().len(), 3);
    let e = read_unpaired(&pairs).unwrap_err();
    assert_eq!(e.location.file, pairs.display().to_string());
    assert!(e.to_string().contains("DPO pairs") && e.to_string().contains("not unpaired"), "{e}");
    let e = read_dpo(&rows).unwrap_err();
    assert_eq!(e.location.file, rows.display().to_string());
    assert!(e.to_string().contains("unpaired (KTO) rows"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}
