//! The DPO view's work: its data from a picked file (Parquet read a row group at a time), a URL
//! or the bundled run, and the DPO report for the view's settings.

use std::rc::Rc;

use bytes::Bytes;
use prefscope_core::io::read::{read_preferences, Input, Preferences};
use prefscope_core::preference::dpo::{FDivergence, PairwiseParams};
use prefscope_core::preference::report::{report, ReportRequest};
use yew::Callback;

use super::progress;
use crate::compute::Runtime;
use crate::fetch::fetch_bytes;
use crate::store::{Action, Dpo, DpoResult, DpoRun};

/// DPO log-probabilities (or Diffusion-DPO rows) from a picked file. Parquet is read a row
/// group at a time from slices of the file (never the whole file in wasm memory); JSON Lines
/// and CSV are read whole.
pub async fn dpo_file(file: web_sys::File, dispatch: &Callback<Action>) -> Result<(String, DpoLoaded), String> {
    let name = file.name();
    let parquet =
        prefscope_core::io::read::Format::from_name(&name).ok() == Some(prefscope_core::io::read::Format::Parquet);
    let blob: web_sys::Blob = file.into();
    let read_whole = |blob: web_sys::Blob| async move {
        gloo::file::futures::read_as_bytes(&gloo::file::Blob::from(blob))
            .await
            .map_err(|e| format!("cannot read the file: {e}"))
    };
    // Which reader, from the columns alone (a Parquet file's footer, a text file's first row).
    if parquet {
        if ranked_lists(&parquet_columns(&blob).await) {
            let bytes = read_whole(blob).await.map_err(|e| format!("{name}: {e}"))?;
            let lists = prefscope_core::io::read::read_ranked(&name, Bytes::from(bytes)).map_err(|e| e.to_string())?;
            return Ok((name, DpoLoaded::Ranked(lists)));
        }
        let data = parquet_in_pieces(&name, blob, dispatch).await?;
        return Ok((name, DpoLoaded::Pairs(data)));
    }
    let bytes = read_whole(blob).await.map_err(|e| format!("{name}: {e}"))?;
    if ranked_lists(&prefscope_core::io::read::column_names(&name, &bytes)) {
        let lists = prefscope_core::io::read::read_ranked(&name, Bytes::from(bytes)).map_err(|e| e.to_string())?;
        return Ok((name, DpoLoaded::Ranked(lists)));
    }
    let data = parse_preferences(&name, bytes)?;
    Ok((name, DpoLoaded::Pairs(data)))
}

/// Whether columns are those of ranked lists rather than pairs.
fn ranked_lists(columns: &[String]) -> bool {
    let has = |c: &str| columns.iter().any(|x| x == c);
    (has("rewards") || has("ranks")) && !has("policy_chosen_logps")
}

/// A Parquet Blob's column names, from its footer (empty when it does not parse).
async fn parquet_columns(blob: &web_sys::Blob) -> Vec<String> {
    use prefscope_clip::blob::BlobSource;
    use prefscope_clip::weights::Source;
    let source = BlobSource::unbuffered(blob.clone());
    let len = source.size();
    let Ok(tail) = source.range(len.saturating_sub(8), len).await else { return Vec::new() };
    let Ok(range) = prefscope_core::io::read::ParquetPieces::metadata_range("", len, &tail) else { return Vec::new() };
    let Ok(footer) = source.range(range.start, range.end).await else { return Vec::new() };
    prefscope_core::io::read::parquet_column_names(len, range.start, Bytes::from(footer.into_owned()))
}

/// What a file in the DPO view holds (one value per load, never stored in bulk).
#[allow(clippy::large_enum_variant)]
pub enum DpoLoaded {
    Pairs(Preferences),
    Ranked(Vec<prefscope_core::preference::dpo::ranked::RankedList>),
    /// Several files: the evaluations of one run.
    Run(DpoRun),
}

/// Picked or dropped files: one is read as [`dpo_file`] reads it; several (a folder's data
/// files among them) are the evaluations of one run.
pub async fn dpo_files(files: Vec<web_sys::File>, dispatch: &Callback<Action>) -> Result<DpoLoaded, String> {
    use prefscope_core::io::read::Format;
    let files: Vec<web_sys::File> = files.into_iter().filter(|f| Format::from_name(&f.name()).is_ok()).collect();
    match files.len() {
        0 => Err("no .jsonl, .csv or .parquet file among those given".into()),
        1 => Ok(dpo_file(files.into_iter().next().expect("one"), dispatch).await?.1),
        _ => {
            let mut named = Vec::with_capacity(files.len());
            for file in files {
                match dpo_file(file, dispatch).await? {
                    (name, DpoLoaded::Pairs(data)) => named.push((name, data)),
                    (name, _) => {
                        return Err(format!("{name}: a run's evaluations are DPO log-probabilities, one file per step"))
                    }
                }
            }
            run_of(named).map(DpoLoaded::Run)
        }
    }
}

/// The evaluations of a run in step order, each file's step as `prefscope dpo` finds it (its
/// `trl.global_step` metadata, a `step` column, the number in its name); the same refusals.
pub fn run_of(named: Vec<(String, Preferences)>) -> Result<DpoRun, String> {
    let mut entries = Vec::with_capacity(named.len());
    for (name, data) in named {
        let step = prefscope_core::preference::run::evaluation_step(&data).map_err(|e| e.to_string())?;
        entries.push((step, name, data));
    }
    entries.sort_by_key(|e| e.0);
    if let Some(w) = entries.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(format!("{} and {} are both step {}: a run holds one evaluation per step", w[0].1, w[1].1, w[0].0));
    }
    Ok(DpoRun {
        steps: entries.iter().map(|e| e.0).collect(),
        names: entries.iter().map(|e| e.1.clone()).collect(),
        data: entries.into_iter().map(|e| Rc::new(e.2)).collect(),
    })
}

/// A Parquet file read through [`ParquetPieces`]: its footer, then one row group at a time.
async fn parquet_in_pieces(
    name: &str,
    blob: web_sys::Blob,
    dispatch: &Callback<Action>,
) -> Result<Preferences, String> {
    use prefscope_clip::blob::BlobSource;
    use prefscope_clip::weights::Source;
    use prefscope_core::io::read::ParquetPieces;
    let source = BlobSource::unbuffered(blob);
    let len = source.size();
    let fetch = |start: u64, end: u64| {
        let source = &source;
        async move {
            source.range(start, end).await.map(|b| Bytes::from(b.into_owned())).map_err(|e| format!("{name}: {e}"))
        }
    };
    let tail = fetch(len.saturating_sub(8), len).await?;
    let footer = ParquetPieces::metadata_range(name, len, &tail).map_err(|e| e.to_string())?;
    let bytes = fetch(footer.start, footer.end).await?;
    let mut pieces = ParquetPieces::open(name, len, footer.start, bytes).map_err(|e| e.to_string())?;
    for (i, range) in pieces.row_groups().into_iter().enumerate() {
        let bytes = fetch(range.start, range.end).await?;
        let mut progress = |p: prefscope_core::io::read::Progress| {
            let fraction = (p.total > 0).then(|| p.done as f64 / p.total as f64);
            dispatch.emit(Action::Progress(Some(progress(&format!("reading {name}"), fraction))));
        };
        pieces.push_row_group(i, range.start, bytes, &mut progress).map_err(|e| e.to_string())?;
    }
    pieces.finish().map_err(|e| e.to_string())
}

/// Reads DPO log-probabilities (or Diffusion-DPO rows) from bytes, naming the file in errors.
pub fn parse_preferences(name: &str, bytes: Vec<u8>) -> Result<Preferences, String> {
    read_preferences(Input::Bytes { name, bytes: Bytes::from(bytes) }, None, &mut |_| {}).map_err(|e| e.to_string())
}

/// The bundled DPO demo run (crates/synth/dpo-demo, copied into the page's data folder by
/// `cargo xtask dist`): the held-out pairs exported at these steps of its 300.
pub const BUNDLED_RUN: [&str; 7] = [
    "eval-10.jsonl",
    "eval-50.jsonl",
    "eval-100.jsonl",
    "eval-150.jsonl",
    "eval-200.jsonl",
    "eval-250.jsonl",
    "eval-300.jsonl",
];

/// The bundled run as the DPO view's data.
pub async fn load_bundled(base: &str, dispatch: &Callback<Action>) -> Result<DpoRun, String> {
    let urls: Vec<String> = BUNDLED_RUN.iter().map(|f| format!("{base}data/dpo_demo_run/{f}")).collect();
    match load_dpo(&urls, dispatch).await? {
        DpoLoaded::Run(run) => Ok(run),
        _ => Err("the bundled run holds several evaluations".into()),
    }
}

/// The DPO data at `urls`: one file, or the evaluations of one run (`data=` with several
/// whitespace-separated URLs).
pub async fn load_dpo(urls: &[String], dispatch: &Callback<Action>) -> Result<DpoLoaded, String> {
    let mut named = Vec::with_capacity(urls.len());
    for url in urls {
        let name = url.rsplit('/').next().unwrap_or(url).split('?').next().unwrap_or(url).to_string();
        let report = |done: u64, total: Option<u64>| {
            let fraction = total.filter(|t| *t > 0).map(|t| done as f64 / t as f64);
            dispatch.emit(Action::Progress(Some(progress(&format!("loading {name}"), fraction))));
        };
        let bytes = fetch_bytes(url, &report).await?;
        named.push((name.clone(), parse_preferences(&name, bytes)?));
    }
    if named.len() == 1 {
        return Ok(DpoLoaded::Pairs(named.pop().expect("one").1));
    }
    run_of(named).map(DpoLoaded::Run)
}

/// The report request the view's settings make.
pub fn dpo_request(dpo: &Dpo) -> ReportRequest {
    ReportRequest {
        objective: dpo.losses.join(","),
        weights: None,
        beta: Some(dpo.beta),
        params: PairwiseParams {
            label_smoothing: dpo.label_smoothing,
            f_divergence: FDivergence::ReverseKl,
            ..PairwiseParams::default()
        },
        ..ReportRequest::default()
    }
}

/// The DPO report for the view's settings: prefscope-gpu's kernels on WebGPU, core's CPU
/// reference otherwise (the same function `prefscope dpo` calls).
pub async fn dpo_report(runtime: &Runtime, dpo: &Dpo) -> Result<DpoResult, String> {
    let data = dpo.data.as_ref().ok_or("no DPO data loaded")?;
    let request = dpo_request(dpo);
    let result = match &runtime.gpu {
        Some(gpu) => gpu.report(data, &request).await.map_err(|e| e.to_string())?,
        None => report(data, &request).map_err(|e| e.to_string())?,
    };
    let p = &result.evaluation.pairs;
    Ok(DpoResult {
        key: dpo.key(),
        metrics: result.evaluation.metrics.clone(),
        ids: result.ids.to_vec(),
        chosen_reward: p.chosen_reward.clone(),
        rejected_reward: p.rejected_reward.clone(),
        margin: p.margin.clone(),
        loss: p.loss.clone(),
        calibration: result.calibration.clone(),
    })
}

/// One pair over the run's steps (the steps that evaluated it).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Trajectory {
    pub steps: Vec<i64>,
    pub margin: Vec<f64>,
    pub chosen: Vec<f64>,
    pub rejected: Vec<f64>,
}

/// What the run panel draws: every step's metrics, the flips and missing ids (core's
/// `preference::run`, as `prefscope dpo` reports them) and each pair's trajectory by id.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunSummary {
    pub steps: Vec<i64>,
    pub metrics: Vec<std::collections::BTreeMap<String, f64>>,
    pub flips: Vec<prefscope_core::preference::run::Flip>,
    pub missing: Vec<String>,
    pub trajectories: std::collections::HashMap<String, Trajectory>,
}

/// Every evaluation of the run reported under the view's settings, on the CPU (a run of
/// twenty steps of ten thousand pairs takes well under a second).
pub fn run_summary(run: &DpoRun, request: &ReportRequest) -> Result<RunSummary, String> {
    use prefscope_core::preference::run::{run as follow, Evaluation};
    let mut evaluations = Vec::with_capacity(run.data.len());
    let mut trajectories: std::collections::HashMap<String, Trajectory> = std::collections::HashMap::new();
    for ((data, &step), name) in run.data.iter().zip(&run.steps).zip(&run.names) {
        let report = report(data, request).map_err(|e| format!("{name}: {e}"))?;
        let p = &report.evaluation.pairs;
        for (i, id) in report.ids.iter().enumerate() {
            let t = trajectories.entry(id.clone()).or_default();
            t.steps.push(step);
            t.margin.push(p.margin[i]);
            t.chosen.push(p.chosen_reward[i]);
            t.rejected.push(p.rejected_reward[i]);
        }
        evaluations.push(Evaluation { step, source: name.clone(), report });
    }
    let followed = follow(evaluations).map_err(|e| e.to_string())?;
    Ok(RunSummary {
        steps: followed.steps.iter().map(|(s, _)| *s).collect(),
        metrics: followed.steps.into_iter().map(|(_, m)| m).collect(),
        flips: followed.flips,
        missing: followed.missing,
        trajectories,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, rows: &[(&str, f64)]) -> (String, Preferences) {
        let text: String = rows
            .iter()
            .map(|(id, margin)| {
                format!(
                    "{{\"id\": \"{id}\", \"policy_chosen_logps\": {margin}, \"policy_rejected_logps\": 0, \"reference_chosen_logps\": 0, \"reference_rejected_logps\": 0}}\n"
                )
            })
            .collect();
        (name.to_string(), parse_preferences(name, text.into_bytes()).unwrap())
    }

    #[test]
    fn a_run_is_ordered_by_step_and_follows_each_pair() {
        let run = run_of(vec![file("eval-20.jsonl", &[("a", -1.0), ("b", 2.0)]), file("eval-5.jsonl", &[("a", 1.0)])])
            .unwrap();
        assert_eq!(
            (run.steps.clone(), run.names.clone()),
            (vec![5, 20], vec!["eval-5.jsonl".to_string(), "eval-20.jsonl".into()])
        );
        let request = ReportRequest { beta: Some(1.0), ..ReportRequest::default() };
        let summary = run_summary(&run, &request).unwrap();
        assert_eq!(summary.steps, [5, 20]);
        assert_eq!(summary.metrics[1]["rewards/accuracies"], 0.5);
        assert_eq!(summary.flips.len(), 1);
        assert_eq!((summary.flips[0].id.as_str(), summary.flips[0].step), ("a", 20));
        assert_eq!(summary.missing, ["b"]);
        assert_eq!(summary.trajectories["a"].margin, [1.0, -1.0]);
        let same = run_of(vec![file("eval-5.jsonl", &[("a", 1.0)]), file("x-5.jsonl", &[("a", 1.0)])]).unwrap_err();
        assert!(same.contains("both step 5"), "{same}");
    }
}
