//! `prefscope.dpo`: `prefscope dpo`'s report from files or Arrow streams (several: one run).

use std::collections::BTreeMap;
use std::path::PathBuf;

use arrow_array::ffi_stream::RecordBatchStreamReader;
use arrow_array::{RecordBatch, RecordBatchReader};
use arrow_pyarrow::{FromPyArrow, ToPyArrow};
use numpy::PyArray1;
use prefscope_core::io::read::{read_preferences, read_ranked, read_record_batches, Input, Preferences};
use prefscope_core::io::write::{metrics_json, Column, OutputTable};
use prefscope_core::preference::dpo::ranked::{evaluate_lists, RANKED_OBJECTIVES};
use prefscope_core::preference::dpo::PairwiseParams;
use prefscope_core::preference::report::{report, subset_reports, ReportOptions, ReportRequest};
use prefscope_core::preference::run;
use prefscope_core::preference::shards::{combine, shard_sums, ShardSums};
use prefscope_core::preference::subsets::By;
use prefscope_gpu::block_on;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::error;

/// Where the rows come from, resolved while the GIL is held.
enum Source {
    Path(PathBuf),
    Stream { name: String, reader: RecordBatchStreamReader },
}

fn source(obj: &Bound<'_, PyAny>) -> PyResult<Source> {
    if let Ok(path) = obj.extract::<PathBuf>() {
        return Ok(Source::Path(path));
    }
    if obj.hasattr("__arrow_c_stream__")? {
        let reader = RecordBatchStreamReader::from_pyarrow_bound(obj)
            .map_err(|e| error(format!("cannot read the Arrow stream: {e}")))?;
        return Ok(Source::Stream { name: "table".into(), reader });
    }
    Err(error(format!(
        "source must be a path (JSON Lines, CSV, Parquet) or an Arrow table or stream, got {}",
        obj.get_type().name()?
    )))
}

/// The report's metrics, the rest of the command's document (calibration; a run's steps,
/// flips and missing ids; subsets) as JSON text, and its per-pair table.
type Output = (BTreeMap<String, f64>, String, RecordBatch);

fn run(
    mut sources: Vec<Source>,
    request: ReportRequest,
    sft_weight: f64,
    by: Option<By>,
    device: &str,
) -> Result<Output, String> {
    let objective = request.objective.trim().to_string();
    if let Some(objective) = RANKED_OBJECTIVES.iter().find(|o| **o == objective) {
        if sources.len() != 1 {
            return Err(format!("`{objective}` reads one file of ranked lists, not {}", sources.len()));
        }
        let Some(Source::Path(path)) = sources.pop() else {
            return Err(format!("`{objective}` reads ranked lists from a JSON Lines file; give its path"));
        };
        let name = path.display().to_string();
        let bytes = std::fs::read(&path).map_err(|e| format!("{name}: cannot read: {e}"))?;
        let lists = read_ranked(&name, bytes::Bytes::from(bytes)).map_err(|e| e.to_string())?;
        let evaluation = evaluate_lists(objective, &lists, request.beta, sft_weight).map_err(|e| e.to_string())?;
        let table = OutputTable::new(vec![
            ("id".into(), Column::Text(lists.into_iter().map(|l| l.id).collect())),
            ("loss".into(), Column::Float(evaluation.pairs.loss)),
        ]);
        return Ok((evaluation.metrics, "{}".into(), table.record_batch().map_err(|e| e.to_string())?));
    }
    let data: Vec<Preferences> = sources.into_iter().map(read).collect::<Result<_, _>>()?;
    let (gpu, _) = crate::device::open(device)?;
    let evaluate = |d| match &gpu {
        Some(gpu) => block_on(gpu.report(d, &request)).map_err(|e| e.to_string()),
        None => report(d, &request).map_err(|e| e.to_string()),
    };
    if let [one] = data.as_slice() {
        // One file: its pairs go to Arrow without a copy (a million rows stay cheap).
        let result = evaluate(one)?;
        let mut extras = serde_json::Map::new();
        extras.insert("calibration".into(), result.calibration.json());
        if let Some(by) = by {
            let (subsets, mean) = subset_reports(one, by, &request).map_err(|e| e.to_string())?;
            let subsets: serde_json::Map<String, serde_json::Value> =
                subsets.iter().map(|(k, m)| (k.clone(), metrics_json(m))).collect();
            extras.insert("subsets".into(), subsets.into());
            extras.insert("subsets_mean".into(), metrics_json(&mean));
        }
        let (metrics, batch) = result.into_parts().map_err(|e| e.to_string())?;
        return Ok((metrics, serde_json::Value::Object(extras).to_string(), batch));
    }
    let document = run::document(&data, &request, by, &|d| evaluate(d).map_err(RunError)).map_err(|RunError(e)| e)?;
    let mut json = document.json;
    if let Some(map) = json.as_object_mut() {
        map.remove("metrics");
    }
    let batch = document.rows.record_batch().map_err(|e| e.to_string())?;
    Ok((document.metrics, json.to_string(), batch))
}

/// An error of the run's document, as text.
struct RunError(String);

impl From<prefscope_core::ConfigError> for RunError {
    fn from(e: prefscope_core::ConfigError) -> Self {
        RunError(e.to_string())
    }
}

fn request(
    loss: &str,
    beta: Option<f64>,
    label_smoothing: f64,
    weights: Option<Vec<f64>>,
    f_divergence: &str,
    f_alpha: f64,
) -> PyResult<ReportRequest> {
    ReportOptions {
        loss: Some(loss.to_string()),
        weights,
        beta,
        label_smoothing: Some(label_smoothing),
        f_divergence: Some(f_divergence.to_string()),
        f_alpha: Some(f_alpha),
        bins: None,
        desirable_weight: None,
        undesirable_weight: None,
    }
    .request()
    .map_err(error)
}

fn read(source: Source) -> Result<Preferences, String> {
    match source {
        Source::Path(path) => read_preferences(Input::Path(&path), None, &mut |_| {}),
        Source::Stream { name, reader } => {
            let schema = reader.schema();
            read_record_batches(&name, &schema, reader)
        }
    }
    .map_err(|e| e.to_string())
}

/// One shard's part of the report (prefscope-core's `shards`): `{"pairs", "sums", "margin",
/// "length_difference", "calibration"}`, for [`combine_shards`].
#[pyfunction]
#[pyo3(signature = (source, loss="sigmoid", beta=None, label_smoothing=0.0, weights=None,
                    f_divergence="reverse_kl", f_alpha=0.5))]
#[allow(clippy::too_many_arguments)]
pub fn dpo_shard<'py>(
    py: Python<'py>,
    source: &Bound<'py, PyAny>,
    loss: &str,
    beta: Option<f64>,
    label_smoothing: f64,
    weights: Option<Vec<f64>>,
    f_divergence: &str,
    f_alpha: f64,
) -> PyResult<Bound<'py, PyDict>> {
    let source = self::source(source)?;
    let request = request(loss, beta, label_smoothing, weights, f_divergence, f_alpha)?;
    let part = py
        .detach(move || read(source).and_then(|data| shard_sums(&data, &request).map_err(|e| e.to_string())))
        .map_err(error)?;
    let out = PyDict::new(py);
    out.set_item("pairs", part.pairs)?;
    out.set_item("sums", part.sums)?;
    out.set_item("margin", PyArray1::from_vec(py, part.margin))?;
    out.set_item("length_difference", part.length_difference.map(|d| PyArray1::from_vec(py, d)))?;
    out.set_item("calibration", PyArray1::from_vec(py, part.calibration))?;
    Ok(out)
}

/// The whole set's metrics from [`dpo_shard`]'s parts.
#[pyfunction]
pub fn combine_shards<'py>(py: Python<'py>, parts: Vec<Bound<'py, PyDict>>) -> PyResult<BTreeMap<String, f64>> {
    fn field<'py>(d: &Bound<'py, PyDict>, key: &str) -> PyResult<Bound<'py, PyAny>> {
        d.get_item(key)?.ok_or_else(|| error(format!("a shard without `{key}`")))
    }
    let mut shards = Vec::with_capacity(parts.len());
    for d in &parts {
        let difference = field(d, "length_difference")?;
        shards.push(ShardSums {
            pairs: field(d, "pairs")?.extract()?,
            sums: field(d, "sums")?.extract()?,
            margin: field(d, "margin")?.extract::<Vec<f64>>()?,
            length_difference: if difference.is_none() { None } else { Some(difference.extract()?) },
            calibration: field(d, "calibration")?.extract::<Vec<f64>>()?,
        });
    }
    py.detach(move || combine(&shards)).map_err(error)
}

/// Every named objective's batch loss from one fused pass (prefscope-core's `compare`, the
/// page's comparison table): `(losses, metrics)`.
#[pyfunction]
#[pyo3(signature = (source, objectives, beta=0.1, label_smoothing=0.0))]
pub fn compare<'py>(
    py: Python<'py>,
    source: &Bound<'py, PyAny>,
    objectives: Vec<String>,
    beta: f64,
    label_smoothing: f64,
) -> PyResult<(BTreeMap<String, f64>, BTreeMap<String, f64>)> {
    let source = self::source(source)?;
    let params = PairwiseParams { beta, label_smoothing, ..PairwiseParams::default() };
    py.detach(move || {
        let Preferences::Dpo(table) = read(source)? else {
            return Err("compare takes DPO pairs, not Diffusion-DPO or unpaired (KTO) rows".to_string());
        };
        let names: Vec<&str> = objectives.iter().map(|o| o.trim()).collect();
        let comparison = prefscope_core::preference::dpo::compare(&table, &names, params).map_err(|e| e.to_string())?;
        Ok((comparison.losses, comparison.metrics))
    })
    .map_err(error)
}

/// `prefscope dpo`'s report on one source or on several (the evaluations of one run):
/// `(metrics, rest, pairs)`, the metrics under TRL's names, the rest of the command's document
/// as JSON text, and the pairs as a pyarrow RecordBatch with the command's columns.
#[pyfunction]
#[pyo3(signature = (sources, loss="sigmoid", beta=None, label_smoothing=0.0, weights=None,
                    f_divergence="reverse_kl", f_alpha=0.5, sft_weight=0.05, bins=10, by=None,
                    desirable_weight=None, undesirable_weight=None, device="auto"))]
#[allow(clippy::too_many_arguments)]
pub fn dpo<'py>(
    py: Python<'py>,
    sources: Vec<Bound<'py, PyAny>>,
    loss: &str,
    beta: Option<f64>,
    label_smoothing: f64,
    weights: Option<Vec<f64>>,
    f_divergence: &str,
    f_alpha: f64,
    sft_weight: f64,
    bins: usize,
    by: Option<&str>,
    desirable_weight: Option<f64>,
    undesirable_weight: Option<f64>,
    device: &str,
) -> PyResult<(Bound<'py, PyDict>, String, Bound<'py, PyAny>)> {
    let kto_weights = (desirable_weight, undesirable_weight);
    if sources.is_empty() {
        return Err(error("dpo: no source given"));
    }
    let sources = sources.iter().map(|s| self::source(s)).collect::<PyResult<Vec<_>>>()?;
    let mut request = request(loss, beta, label_smoothing, weights, f_divergence, f_alpha)?;
    request.bins = bins;
    // Checked as the command checks `--desirable-weight` and `--undesirable-weight`.
    let kto =
        ReportOptions { desirable_weight: kto_weights.0, undesirable_weight: kto_weights.1, ..Default::default() }
            .request()
            .map_err(error)?;
    request.kto_weights = kto.kto_weights;
    let by = by.map(By::parse).transpose().map_err(error)?;
    let device = device.to_string();
    let (metrics, rest, batch) = py.detach(move || run(sources, request, sft_weight, by, &device)).map_err(error)?;
    let dict = PyDict::new(py);
    for (k, v) in metrics {
        dict.set_item(k, v)?;
    }
    Ok((dict, rest, batch.to_pyarrow(py)?))
}
