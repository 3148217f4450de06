//! A DPO run: several evaluations of one policy, one per training step (the export callback
//! writes one file per evaluation). Each evaluation is reported on its own; the run adds the
//! metrics over steps, the pairs whose margin changed sign, and each pair's trajectory.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use crate::error::{ConfigError, ErrorKind, InputError, Location};
use crate::io::read::Preferences;
use crate::io::record::OptColumn;
use crate::io::write::{metrics_json, Column, OutputTable};
use crate::preference::report::Report;

/// The Parquet metadata key the export callback writes the step under.
pub const STEP_KEY: &str = "trl.global_step";

/// The step an evaluation was taken at: the file's `trl.global_step` metadata, else a
/// constant `step` column, else the last number in the file name (`eval-400.parquet`).
pub fn step_of(source: &str, metadata: &[(String, String)], column: &OptColumn<i64>) -> Result<i64, InputError> {
    let bad = |message: String| InputError::new(Location::file(source), ErrorKind::InvalidValue(message));
    if let Some((_, value)) = metadata.iter().find(|(k, _)| k == STEP_KEY) {
        return value
            .trim()
            .parse()
            .map_err(|_| bad(format!("its `{STEP_KEY}` metadata is `{value}`, not a whole number")));
    }
    if column.any() {
        let mut values = column.iter().enumerate();
        let (_, first) = values.next().expect("a column with a value has a row");
        for (i, v) in std::iter::once((0, first)).chain(values) {
            if v != first || v.is_none() {
                let found = v.map_or("nothing".to_string(), i64::to_string);
                let first = first.map_or("nothing".to_string(), i64::to_string);
                return Err(InputError::new(
                    Location::file(source).row(i as u64 + 1).column("step"),
                    ErrorKind::InvalidValue(format!(
                        "one file is one evaluation: `step` must be the same in every row (row 1 has {first}, this one {found})"
                    )),
                ));
            }
        }
        return Ok(first.copied().expect("checked above"));
    }
    let name = Path::new(source).file_stem().and_then(|s| s.to_str()).unwrap_or(source);
    last_number(name).ok_or_else(|| {
        bad(format!("no step: the file has no `{STEP_KEY}` metadata, no `step` column and no number in its name"))
    })
}

/// The step of one file of a run, after checking that its pairs can be followed across steps:
/// DPO rows (not Diffusion-DPO's), each with its own id.
pub fn evaluation_step(data: &Preferences) -> Result<i64, ConfigError> {
    let Preferences::Dpo(table) = data else {
        let what = match data {
            Preferences::Diffusion(_) => "Diffusion-DPO rows",
            _ => "unpaired (KTO) rows",
        };
        return Err(ConfigError::Invalid(format!(
            "{}: several inputs make a run of DPO evaluations (pairs); {what} are read one file at a time",
            source_of(data)
        )));
    };
    if let Some(row) = table.unnamed_row {
        return Err(ConfigError::Input(Box::new(InputError::new(
            Location::file(&table.source).row(row).column("id"),
            ErrorKind::InvalidValue(
                "this row has no id: with several inputs, pairs are followed across steps by id".into(),
            ),
        ))));
    }
    Ok(step_of(&table.source, &table.metadata, &table.step)?)
}

/// The last run of ASCII digits in `name`, as a number.
fn last_number(name: &str) -> Option<i64> {
    let end = name.rfind(|c: char| c.is_ascii_digit())? + 1;
    let start = name[..end].rfind(|c: char| !c.is_ascii_digit()).map_or(0, |i| i + 1);
    name[start..end].parse().ok()
}

/// One evaluation of the run: its step, where it came from, and its report.
pub struct Evaluation<'a> {
    pub step: i64,
    pub source: String,
    pub report: Report<'a>,
}

/// A pair whose margin changed sign between two consecutive steps at which it was evaluated
/// (a zero margin counts as not positive).
#[derive(Debug, Clone, PartialEq)]
pub struct Flip {
    pub id: String,
    /// The later of the two steps.
    pub step: i64,
    pub from: f64,
    pub to: f64,
}

/// Each pair of the last step, over the steps that evaluated it (in step order).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Trajectories {
    pub steps: Vec<Vec<i64>>,
    pub margins: Vec<Vec<f64>>,
    pub chosen_rewards: Vec<Vec<f64>>,
    pub rejected_rewards: Vec<Vec<f64>>,
}

/// The run's report: the last step's report, with the run around it.
pub struct Run<'a> {
    /// Every step's metrics, in step order.
    pub steps: Vec<(i64, BTreeMap<String, f64>)>,
    pub flips: Vec<Flip>,
    /// Ids evaluated at some steps but not at every one, in order of first appearance.
    pub missing: Vec<String>,
    /// The last step's report: the run's `metrics` and `pairs`.
    pub last: Report<'a>,
    pub trajectories: Trajectories,
}

/// Puts evaluations in step order and follows each pair across them by id. Two evaluations
/// at one step, or an id repeated within one, is an error naming the files.
pub fn run(mut evaluations: Vec<Evaluation<'_>>) -> Result<Run<'_>, ConfigError> {
    if evaluations.is_empty() {
        return Err(ConfigError::Invalid("a run needs at least one evaluation".into()));
    }
    evaluations.sort_by_key(|e| e.step);
    for w in evaluations.windows(2) {
        if w[0].step == w[1].step {
            return Err(ConfigError::Invalid(format!(
                "{} and {} are both step {}: a run holds one evaluation per step",
                w[0].source, w[1].source, w[0].step
            )));
        }
    }
    // Every id gets a dense number, in order of first appearance; `rows[s][d]` is id d's row
    // at step s (NONE where absent). An evaluation with the previous one's ids in the same
    // order (what an export callback writes) reuses its numbering without hashing.
    const NONE: u32 = u32::MAX;
    let mut dense: HashMap<&str, u32> = HashMap::new();
    let mut order: Vec<&str> = Vec::new();
    let mut numbering: Vec<Vec<u32>> = Vec::with_capacity(evaluations.len());
    for (s, e) in evaluations.iter().enumerate() {
        let ids = &e.report.ids;
        if s > 0 && evaluations[s - 1].report.ids[..] == ids[..] {
            let same = numbering[s - 1].clone();
            numbering.push(same);
            continue;
        }
        let mut numbers = Vec::with_capacity(ids.len());
        for id in ids.iter() {
            let next = order.len() as u32;
            let d = *dense.entry(id.as_str()).or_insert_with(|| {
                order.push(id.as_str());
                next
            });
            numbers.push(d);
        }
        numbering.push(numbers);
    }
    drop(dense);
    let n = order.len();
    let mut rows: Vec<Vec<u32>> = Vec::with_capacity(evaluations.len());
    for (s, e) in evaluations.iter().enumerate() {
        if s > 0 && numbering[s] == numbering[s - 1] {
            let same = rows[s - 1].clone();
            rows.push(same);
            continue;
        }
        let mut at = vec![NONE; n];
        for (i, &d) in numbering[s].iter().enumerate() {
            let first = std::mem::replace(&mut at[d as usize], i as u32);
            if first != NONE {
                return Err(ConfigError::Input(Box::new(InputError::new(
                    Location::file(&e.source).row(i as u64 + 1).column("id"),
                    ErrorKind::InvalidValue(format!(
                        "id `{}` repeats row {}: pairs are followed across steps by id, so ids must be unique",
                        order[d as usize],
                        first + 1
                    )),
                ))));
            }
        }
        rows.push(at);
    }

    // Flips: each id against its previous evaluation (in step order; within a step, in order
    // of the ids' first appearance).
    let mut previous = vec![f64::NAN; n];
    let mut flips = Vec::new();
    for (e, at) in evaluations.iter().zip(&rows) {
        let margins = &e.report.evaluation.pairs.margin;
        for (d, &i) in at.iter().enumerate() {
            if i == NONE {
                continue;
            }
            let m = margins[i as usize];
            let before = std::mem::replace(&mut previous[d], m);
            // NaN: the first evaluation of this pair.
            if !before.is_nan() && (before > 0.0) != (m > 0.0) {
                flips.push(Flip { id: order[d].to_string(), step: e.step, from: before, to: m });
            }
        }
    }

    // Missing: ids some step lacks, in order of first appearance.
    let missing: Vec<String> =
        (0..n).filter(|&d| rows.iter().any(|at| at[d] == NONE)).map(|d| order[d].to_string()).collect();

    let last = evaluations.len() - 1;
    let mut trajectories = Trajectories::default();
    for &d in &numbering[last] {
        let d = d as usize;
        let (mut steps, mut margins, mut chosen, mut rejected) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (e, at) in evaluations.iter().zip(&rows) {
            let i = at[d];
            if i != NONE {
                let p = &e.report.evaluation.pairs;
                let i = i as usize;
                steps.push(e.step);
                margins.push(p.margin[i]);
                chosen.push(p.chosen_reward[i]);
                rejected.push(p.rejected_reward[i]);
            }
        }
        trajectories.steps.push(steps);
        trajectories.margins.push(margins);
        trajectories.chosen_rewards.push(chosen);
        trajectories.rejected_rewards.push(rejected);
    }
    drop(rows);

    let steps = evaluations.iter().map(|e| (e.step, e.report.metrics().clone())).collect();
    let last = evaluations.pop().expect("not empty").report;
    Ok(Run { steps, flips, missing, last, trajectories })
}

impl Run<'_> {
    /// The last step's pairs with each one's trajectory as list columns.
    pub fn pairs_table(&self) -> OutputTable {
        let mut table = self.last.pairs_table();
        let t = &self.trajectories;
        table.columns.push(("steps".into(), Column::Ints(t.steps.clone())));
        table.columns.push(("margins".into(), Column::Floats(t.margins.clone())));
        table.columns.push(("chosen_rewards".into(), Column::Floats(t.chosen_rewards.clone())));
        table.columns.push(("rejected_rewards".into(), Column::Floats(t.rejected_rewards.clone())));
        table
    }

    /// `steps`, `flips` and `missing` as the report's JSON keys.
    pub fn json_parts(&self) -> serde_json::Map<String, serde_json::Value> {
        use serde_json::{json, Value};
        let number = |x: f64| serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number);
        let mut map = serde_json::Map::new();
        map.insert(
            "steps".into(),
            self.steps.iter().map(|(step, m)| json!({ "step": step, "metrics": metrics_json(m) })).collect(),
        );
        map.insert(
            "flips".into(),
            self.flips
                .iter()
                .map(|f| json!({ "id": f.id, "step": f.step, "from": number(f.from), "to": number(f.to) }))
                .collect(),
        );
        map.insert("missing".into(), json!(self.missing));
        map
    }
}

/// What `prefscope dpo --format json` prints for one file or a run, and the rows its tabular
/// formats write.
pub struct Document {
    /// `metrics`, `calibration`; for a run `steps`, `flips`, `missing`; with `by`, `subsets`
    /// and `subsets_mean`. The pairs are in `rows` (as JSON only when asked: [`Document::with_pairs`]).
    pub json: serde_json::Value,
    pub rows: OutputTable,
    /// The (last step's) metrics.
    pub metrics: BTreeMap<String, f64>,
    /// A line for people: the run's steps and flips.
    pub note: Option<String>,
}

/// The one place the command, the JavaScript API and the Python package assemble the DPO
/// document: one file is reported alone; several are the evaluations of one run, and
/// `metrics`, `pairs`, `calibration` and the subsets are then the last step's. `evaluate`
/// reports one file (on the GPU or the CPU).
pub fn document<'a, E: From<ConfigError>>(
    data: &'a [crate::io::read::Preferences],
    request: &crate::preference::report::ReportRequest,
    by: Option<crate::preference::subsets::By>,
    evaluate: &dyn Fn(&'a Preferences) -> Result<Report<'a>, E>,
) -> Result<Document, E> {
    use serde_json::{Map, Value};
    let mut json = Map::new();
    let (last, last_data, rows, note) = match data {
        [] => return Err(ConfigError::Invalid("no input".into()).into()),
        [one] => {
            let report = evaluate(one)?;
            let rows = report.pairs_table();
            (report, one, rows, None)
        }
        several => {
            let mut evaluations = Vec::with_capacity(several.len());
            for d in several {
                let step = evaluation_step(d)?;
                evaluations.push((step, d, evaluate(d)?));
            }
            let last_data = evaluations.iter().max_by_key(|e| e.0).map(|e| e.1).expect("several");
            let evaluations = evaluations
                .into_iter()
                .map(|(step, d, report)| Evaluation { step, source: source_of(d).to_string(), report })
                .collect();
            let run = run(evaluations)?;
            json.extend(run.json_parts());
            let rows = run.pairs_table();
            let note = format!(
                "{} steps, {} flips, {} ids missing from some step",
                run.steps.len(),
                run.flips.len(),
                run.missing.len()
            );
            (run.last, last_data, rows, Some(note))
        }
    };
    json.insert("metrics".into(), metrics_json(last.metrics()));
    json.insert("calibration".into(), last.calibration.json());
    if let Some(by) = by {
        let (subsets, mean) = crate::preference::report::subset_reports(last_data, by, request)?;
        let subsets: Map<String, Value> = subsets.iter().map(|(name, m)| (name.clone(), metrics_json(m))).collect();
        json.insert("subsets".into(), subsets.into());
        json.insert("subsets_mean".into(), metrics_json(&mean));
    }
    Ok(Document { json: json.into(), rows, metrics: last.metrics().clone(), note })
}

impl Document {
    /// The whole JSON document, the pairs' rows under `pairs` (what `--format json` prints; the
    /// tabular formats and Python take `rows` as they are).
    pub fn with_pairs(&self) -> serde_json::Value {
        let mut json = self.json.clone();
        json["pairs"] = self.rows.json_rows();
        json
    }
}

/// The name a file was read under.
fn source_of(data: &Preferences) -> &str {
    match data {
        Preferences::Dpo(t) => &t.source,
        Preferences::Diffusion(t) => &t.source,
        Preferences::Unpaired(t) => &t.source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_step_is_the_last_number_of_the_file_name() {
        assert_eq!(last_number("eval-400"), Some(400));
        assert_eq!(last_number("run3-eval-0012"), Some(12));
        assert_eq!(last_number("eval"), None);
        let none = OptColumn::default();
        assert_eq!(step_of("out/checkpoint-7/eval-50.parquet", &[], &none).unwrap(), 50);
        assert!(step_of("x/eval.jsonl", &[], &none).unwrap_err().to_string().contains("no step"));
    }

    #[test]
    fn metadata_comes_before_the_column_and_the_name() {
        let meta = vec![(STEP_KEY.to_string(), "120".to_string())];
        let mut column = OptColumn::default();
        column.push(Some(7));
        assert_eq!(step_of("eval-400.parquet", &meta, &column).unwrap(), 120);
        assert_eq!(step_of("eval-400.parquet", &[], &column).unwrap(), 7);
        column.push(Some(8));
        let e = step_of("eval-400.parquet", &[], &column).unwrap_err().to_string();
        assert!(e.contains("row 2") && e.contains("step"), "{e}");
        let bad = vec![(STEP_KEY.to_string(), "x".to_string())];
        assert!(step_of("e.parquet", &bad, &column).unwrap_err().to_string().contains(STEP_KEY));
    }
}
