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
use crate::store::{Action, Dpo, DpoResult};

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

/// The bundled DPO demo run (crates/synth/dpo-demo, copied into the page's data folder): its
/// held-out pairs after the whole budget and at the early checkpoint.
pub const BUNDLED_FINAL: &str = "dpo_demo.jsonl";
pub const BUNDLED_EARLY: &str = "dpo_demo_early.jsonl";

/// One checkpoint of the bundled run as the DPO view's data, the other beside it.
pub async fn load_bundled(base: &str, early: bool, dispatch: &Callback<Action>) -> Result<(), String> {
    let (this, other) = if early { (BUNDLED_EARLY, BUNDLED_FINAL) } else { (BUNDLED_FINAL, BUNDLED_EARLY) };
    let (name, data) = load_dpo(Some(&format!("{base}data/{this}")), base, dispatch).await?;
    dispatch.emit(Action::DpoData(name, Rc::new(data)));
    let (name, data) = load_dpo(Some(&format!("{base}data/{other}")), base, dispatch).await?;
    dispatch.emit(Action::DpoCompare(name, Rc::new(data)));
    Ok(())
}

/// The DPO data at `url`, or the bundled export shipped beside the page.
pub async fn load_dpo(
    url: Option<&str>,
    base: &str,
    dispatch: &Callback<Action>,
) -> Result<(String, Preferences), String> {
    let url = url.map(str::to_string).unwrap_or_else(|| format!("{base}data/{BUNDLED_FINAL}"));
    let name = url.rsplit('/').next().unwrap_or(&url).split('?').next().unwrap_or(&url).to_string();
    let report = |done: u64, total: Option<u64>| {
        let fraction = total.filter(|t| *t > 0).map(|t| done as f64 / t as f64);
        dispatch.emit(Action::Progress(Some(progress(&format!("loading {name}"), fraction))));
    };
    let bytes = fetch_bytes(&url, &report).await?;
    Ok((name.clone(), parse_preferences(&name, bytes)?))
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
    })
}
