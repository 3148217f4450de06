//! `cargo xtask bench` (runs part): a DPO run of 20 evaluations × 100 000 pairs from Parquet
//! (sequence-level columns, `preference_share` included), every metric of every step, the flips
//! between steps, each pair's trajectory and the calibration — `prefscope dpo --input DIR`'s
//! work without writing its document — beside the same computation in numpy + pandas timed in
//! the same run (xtask/bench/dpo_run_numpy.py, when the reference venv exists). Prints a table;
//! asserts nothing.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use prefscope_core::io::read::{read_preferences, Input, Preferences};
use prefscope_core::preference::report::{report, ReportRequest};
use prefscope_core::preference::run::{evaluation_step, run, Evaluation};

const STEPS: usize = 20;
const PAIRS: usize = 100_000;
const REPEATS: usize = 3;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Deterministic pseudo-random evaluations (xorshift): the policy drifts from the reference
/// step by step, so margins grow and some pairs flip.
fn write_run(dir: &Path) {
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    std::fs::create_dir_all(dir).unwrap();
    let base: Vec<(f64, f64, i64, i64, f64)> = (0..PAIRS)
        .map(|_| {
            let (a, b) = (1 + (next() * 255.0) as i64, 1 + (next() * 255.0) as i64);
            (-(0.2 + 2.8 * next()) * a as f64, -(0.2 + 2.8 * next()) * b as f64, a, b, 0.5 + 0.5 * next())
        })
        .collect();
    let ids: Vec<String> = (0..PAIRS).map(|i| format!("pair-{i}")).collect();
    for s in 0..STEPS {
        let step = 100 * (s + 1);
        let drift = s as f64 / STEPS as f64;
        let (mut pc, mut pr, mut rc, mut rr) = (vec![], vec![], vec![], vec![]);
        for &(x, y, _, _, _) in &base {
            rc.push(x);
            rr.push(y);
            pc.push(x + drift * 4.0 * (next() - 0.3));
            pr.push(y - drift * 4.0 * (next() - 0.3));
        }
        let cols: Vec<(&str, ArrayRef)> = vec![
            ("id", Arc::new(StringArray::from(ids.clone()))),
            ("policy_chosen_logps", Arc::new(Float64Array::from(pc))),
            ("policy_rejected_logps", Arc::new(Float64Array::from(pr))),
            ("reference_chosen_logps", Arc::new(Float64Array::from(rc))),
            ("reference_rejected_logps", Arc::new(Float64Array::from(rr))),
            ("chosen_length", Arc::new(Int64Array::from(base.iter().map(|b| b.2).collect::<Vec<_>>()))),
            ("rejected_length", Arc::new(Int64Array::from(base.iter().map(|b| b.3).collect::<Vec<_>>()))),
            ("preference_share", Arc::new(Float64Array::from(base.iter().map(|b| b.4).collect::<Vec<_>>()))),
        ];
        let batch = RecordBatch::try_from_iter(cols).unwrap();
        let file = std::fs::File::create(dir.join(format!("eval-{step}.parquet"))).unwrap();
        let mut w = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
    }
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    files
}

/// Reading every file, then reporting each step and following the pairs across them.
fn prefscope_run(dir: &Path) -> (Duration, Duration, usize) {
    let start = Instant::now();
    // Read on both cores, as `prefscope dpo` reads several inputs.
    let files = files(dir);
    let data: Vec<Preferences> = std::thread::scope(|s| {
        let handles: Vec<_> = files
            .chunks(files.len().div_ceil(2))
            .map(|part| {
                s.spawn(move || {
                    part.iter()
                        .map(|f| read_preferences(Input::Path(f), None, &mut |_| {}).expect("read"))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().expect("reader")).collect()
    });
    let read = start.elapsed();
    let request = ReportRequest { beta: Some(0.1), ..ReportRequest::default() };
    let evaluations = data
        .iter()
        .map(|d| Evaluation {
            step: evaluation_step(d).expect("step"),
            source: String::new(),
            report: report(d, &request).expect("report"),
        })
        .collect();
    let reported = start.elapsed();
    if std::env::var_os("BENCH_PARTS").is_some() {
        use prefscope_core::preference::report::{add_diagnostics, table_lengths};
        let Preferences::Dpo(t) = &data[0] else { panic!() };
        let time = |what: &str, f: &mut dyn FnMut()| {
            let s = Instant::now();
            f();
            eprintln!("  {what}: {:.1} ms", s.elapsed().as_secs_f64() * 1e3);
        };
        let objective = request.dpo_objective().unwrap();
        let mut e = None;
        time("objective", &mut || e = Some(objective.evaluate(t).unwrap()));
        let e = e.unwrap();
        let mut m = std::collections::BTreeMap::new();
        time("lengths", &mut || drop(table_lengths(t)));
        time("diagnostics", &mut || add_diagnostics(t, &e.pairs.margin, &mut m));
        time("calibration", &mut || {
            let p: Vec<f64> = e.pairs.margin.iter().map(|&x| 1.0 / (1.0 + (-x).exp())).collect();
            drop(prefscope_core::preference::calibration::calibration(&p, None, 10));
        });
        time("whole report", &mut || drop(report(&data[0], &request).unwrap()));
    }
    let followed = run(evaluations).expect("run");
    if std::env::var_os("BENCH_VERBOSE").is_some() {
        let (r, e) = (read.as_secs_f64(), reported.as_secs_f64());
        eprintln!("read {r:.3} s, reports {:.3} s, run {:.3} s", e - r, start.elapsed().as_secs_f64() - e);
    }
    let flips = followed.flips.len();
    std::hint::black_box(&followed);
    (read, start.elapsed(), flips)
}

fn numpy_baseline(dir: &Path) -> Option<(f64, f64, usize)> {
    let python = root().join(".venv-reference/bin/python");
    if !python.exists() {
        println!("(numpy + pandas baseline skipped: no .venv-reference; build it with tools/reference-venv.sh)");
        return None;
    }
    let out = Command::new(python)
        .arg(root().join("xtask/bench/dpo_run_numpy.py"))
        .arg(dir)
        .arg(REPEATS.to_string())
        .output()
        .ok()?;
    if !out.status.success() {
        println!("(numpy + pandas baseline failed: {})", String::from_utf8_lossy(&out.stderr));
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    Some((v["total_s"].as_f64()?, v["compute_s"].as_f64()?, v["flips"].as_u64()? as usize))
}

fn main() {
    let dir = root().join(format!("target/bench-data/dpo_run_{STEPS}x{PAIRS}"));
    if !dir.join(format!("eval-{}.parquet", 100 * STEPS)).exists() {
        write_run(&dir);
    }
    let mut best = (Duration::MAX, Duration::MAX, 0);
    for _ in 0..REPEATS {
        let r = prefscope_run(&dir);
        if r.1 < best.1 {
            best = r;
        }
    }
    let (total, compute) = (best.1.as_secs_f64(), (best.1 - best.0).as_secs_f64());
    println!("DPO run: {STEPS} evaluations x {PAIRS} pairs from Parquet, every metric + calibration + flips + trajectories, best of {REPEATS}");
    println!("{:<28} {:>10} {:>10} {:>8}", "", "total s", "compute s", "flips");
    println!("{:<28} {:>10.3} {:>10.3} {:>8}", "prefscope", total, compute, best.2);
    if let Some((np_total, np_compute, flips)) = numpy_baseline(&dir) {
        println!("{:<28} {:>10.3} {:>10.3} {:>8}", "numpy + pandas", np_total, np_compute, flips);
        println!(
            "speed-up over numpy + pandas: {:.2}x end to end, {:.2}x compute",
            np_total / total,
            np_compute / compute
        );
    }
}
