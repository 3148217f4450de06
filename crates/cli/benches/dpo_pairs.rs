//! `cargo xtask bench` (DPO part): one million pairs from Parquet through every objective and
//! metric prefscope has, beside a vectorised numpy implementation timed in the same run
//! (xtask/bench/dpo_numpy.py, when the reference venv exists). Prints a table; asserts nothing.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use prefscope_core::io::read::{read_preferences, Input, Preferences};
use prefscope_core::preference::dpo::compare;
use prefscope_core::preference::dpo::PairwiseParams;

const PAIRS: usize = 1_000_000;
const REPEATS: usize = 5;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Deterministic pseudo-random pairs (xorshift), written once to target/bench-data.
fn write_pairs(path: &Path) {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let (mut pc, mut pr, mut rc, mut rr, mut cl, mut rl) = (vec![], vec![], vec![], vec![], vec![], vec![]);
    for _ in 0..PAIRS {
        let (a, b) = (1 + (next() * 511.0) as i64, 1 + (next() * 511.0) as i64);
        let (x, y) = (-(0.2 + 2.8 * next()) * a as f64, -(0.2 + 2.8 * next()) * b as f64);
        pc.push(x);
        pr.push(y);
        rc.push(x + 16.0 * (next() - 0.5));
        rr.push(y + 16.0 * (next() - 0.5));
        cl.push(a);
        rl.push(b);
    }
    let ids: Vec<String> = (0..PAIRS).map(|i| format!("pair-{i}")).collect();
    let cols: Vec<(&str, ArrayRef)> = vec![
        ("id", Arc::new(StringArray::from(ids))),
        ("policy_chosen_logps", Arc::new(Float64Array::from(pc))),
        ("policy_rejected_logps", Arc::new(Float64Array::from(pr))),
        ("reference_chosen_logps", Arc::new(Float64Array::from(rc))),
        ("reference_rejected_logps", Arc::new(Float64Array::from(rr))),
        ("chosen_length", Arc::new(Int64Array::from(cl))),
        ("rejected_length", Arc::new(Int64Array::from(rl))),
    ];
    let batch = RecordBatch::try_from_iter(cols).unwrap();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let file = std::fs::File::create(path).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

/// The objectives the numpy baseline computes too.
const OBJECTIVES: &[&str] = &[
    "sigmoid",
    "hinge",
    "ipo",
    "exo_pair",
    "nca_pair",
    "robust",
    "bco_pair",
    "sppo_hard",
    "aot",
    "aot_unpaired",
    "apo_zero",
    "apo_down",
    "discopop",
    "sft",
    "sigmoid_norm",
    "cdpo",
    "simpo",
    "cpo",
    "orpo",
    "kto",
    "bco",
];

fn run_all(path: &Path) -> (Duration, Duration) {
    let start = Instant::now();
    let data = read_preferences(Input::Path(path), None, &mut |_| {}).expect("read");
    let read = start.elapsed();
    let Preferences::Dpo(table) = &data else { panic!("DPO data expected") };
    // The same ε = 0.1 for every objective, as the numpy baseline uses.
    let params = PairwiseParams { beta: 0.1, label_smoothing: 0.1, ..Default::default() };
    let all = compare(table, OBJECTIVES, params).expect("compare");
    std::hint::black_box(&all);
    if std::env::var_os("BENCH_VERBOSE").is_some() {
        eprintln!(
            "read {:.1} ms, compute {:.1} ms",
            read.as_secs_f64() * 1e3,
            (start.elapsed() - read).as_secs_f64() * 1e3
        );
        eprintln!("{:?}", all.losses);
        for name in OBJECTIVES {
            let t = Instant::now();
            std::hint::black_box(compare(table, &[name], params).expect("compare"));
            eprintln!("  {name:<14} {:>7.1} ms", t.elapsed().as_secs_f64() * 1e3);
        }
    }
    (read, start.elapsed())
}

/// Parquet decoding alone (arrow batches, nothing kept), to show where read time goes.
fn decode_only(path: &Path) -> Duration {
    let start = Instant::now();
    let file = std::fs::File::open(path).unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .with_batch_size(8192)
        .build()
        .unwrap();
    let rows: usize = reader.map(|b| b.unwrap().num_rows()).sum();
    assert_eq!(rows, PAIRS);
    start.elapsed()
}

fn numpy_baseline(path: &Path) -> Option<(f64, f64)> {
    let python = root().join(".venv-reference/bin/python");
    if !python.exists() {
        println!("(numpy baseline skipped: no .venv-reference; build it with tools/reference-venv.sh)");
        return None;
    }
    let out = Command::new(python)
        .arg(root().join("xtask/bench/dpo_numpy.py"))
        .arg(path)
        .arg(REPEATS.to_string())
        .output()
        .ok()?;
    if !out.status.success() {
        println!("(numpy baseline failed: {})", String::from_utf8_lossy(&out.stderr));
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    Some((v["total_s"].as_f64()?, v["compute_s"].as_f64()?))
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is accepted.
    let path = root().join("target/bench-data/dpo_pairs_1m.parquet");
    if !path.exists() {
        write_pairs(&path);
    }
    let mut best = (Duration::MAX, Duration::MAX);
    for _ in 0..REPEATS {
        let (read, total) = run_all(&path);
        if total < best.1 {
            best = (read, total);
        }
    }
    let decode = (0..REPEATS).map(|_| decode_only(&path)).min().unwrap_or_default();
    let total = best.1.as_secs_f64();
    let compute = total - best.0.as_secs_f64();
    println!("DPO metrics: {PAIRS} pairs from Parquet, {} objectives + metrics, best of {REPEATS}", OBJECTIVES.len());
    println!("{:<28} {:>10} {:>14} {:>10}", "", "total s", "pairs/s", "compute s");
    println!("{:<28} {:>10.3} {:>14.0} {:>10.3}", "prefscope", total, PAIRS as f64 / total, compute);
    println!("  of which reading {:.3} s (Parquet decoding alone {:.3} s)", best.0.as_secs_f64(), decode.as_secs_f64());
    if let Some((np_total, np_compute)) = numpy_baseline(&path) {
        println!(
            "{:<28} {:>10.3} {:>14.0} {:>10.3}",
            "numpy (pyarrow read)",
            np_total,
            PAIRS as f64 / np_total,
            np_compute
        );
        println!("speed-up over numpy: {:.2}x end to end, {:.2}x compute", np_total / total, np_compute / compute);
    }
}
