//! Export of what the current view shows, as CSV, JSON Lines or Parquet (prefscope-core's
//! writers, the same columns `prefscope` writes), handed to the browser as a download.

use prefscope_core::io::write::{Column, OutputTable};
use wasm_bindgen::JsCast;

use crate::options::View;
use crate::store::State;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Csv,
    Jsonl,
    Parquet,
}

impl Format {
    pub const ALL: [Format; 3] = [Format::Csv, Format::Jsonl, Format::Parquet];

    pub fn extension(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Jsonl => "jsonl",
            Format::Parquet => "parquet",
        }
    }

    fn mime(self) -> &'static str {
        match self {
            Format::Csv => "text/csv",
            Format::Jsonl => "application/x-ndjson",
            Format::Parquet => "application/vnd.apache.parquet",
        }
    }
}

fn floats(v: impl Iterator<Item = f32>) -> Column {
    Column::Float(v.map(f64::from).collect())
}

/// Whether the current view has a table to export (cheap: the header asks on every render).
pub fn available(state: &State) -> bool {
    match state.view {
        View::Score | View::Decompose => state.scored.is_some(),
        View::Dpo => state.dpo.result.is_some(),
        View::Pairs => state.pairs.is_some(),
        View::Model => false,
    }
}

/// Downloads the current view's table in `format` (nothing when the view shows no table).
pub fn download_view(state: &State, format: Format) -> Result<(), String> {
    let Some((stem, table)) = table(state) else { return Ok(()) };
    let name = format!("{stem}.{}", format.extension());
    encode(&table, format).and_then(|b| download(&name, &b, format))
}

/// The current view's table and a file stem, or `None` when the view shows no table yet.
pub fn table(state: &State) -> Option<(String, OutputTable)> {
    match state.view {
        View::Score => {
            let s = state.scored.as_ref()?;
            let r = &s.rows;
            let reweighted = |row: &crate::store::Row| {
                crate::views::score::reweighted(state.reweight, state.reweighted.as_deref(), s, row)
            };
            let mut columns = vec![
                ("id".into(), Column::Text(r.iter().map(|r| r.id.clone()).collect())),
                ("group".into(), Column::Text(r.iter().map(|r| r.group.clone()).collect())),
                ("prompt".into(), Column::Text(r.iter().map(|r| r.prompt.clone()).collect())),
                ("image".into(), Column::Text(r.iter().map(|r| s.image_names[r.image].clone()).collect())),
                ("score".into(), floats(r.iter().map(|r| r.score))),
                ("relevant".into(), floats(r.iter().map(|r| r.relevant))),
                ("irrelevant".into(), floats(r.iter().map(|r| r.irrelevant))),
                ("reweighted".into(), floats(r.iter().map(reweighted))),
                ("probability".into(), floats(r.iter().map(|r| r.probability))),
                ("rank".into(), Column::Int(r.iter().map(|r| r.rank as i64).collect())),
            ];
            if r.iter().all(|r| r.truth.is_some()) {
                columns.push(("alignment".into(), floats(r.iter().map(|r| r.truth.map_or(f32::NAN, |t| t.0)))));
                columns.push(("quality".into(), floats(r.iter().map(|r| r.truth.map_or(f32::NAN, |t| t.1)))));
            }
            Some((format!("prefscope-scores-{}", s.scorer.name()), OutputTable::new(columns)))
        }
        View::Decompose => {
            let s = state.scored.as_ref()?;
            let cols = s.prompts.len().max(1);
            let n = s.split.relevant.len();
            let table = OutputTable::new(vec![
                ("image".into(), Column::Text((0..n).map(|k| s.image_names[k / cols].clone()).collect())),
                ("prompt".into(), Column::Text((0..n).map(|k| s.prompts[k % cols].clone()).collect())),
                ("relevant".into(), floats(s.split.relevant.iter().copied())),
                ("irrelevant".into(), floats(s.split.irrelevant.iter().copied())),
                (
                    "reweighted".into(),
                    floats(s.split.relevant.iter().zip(&s.split.irrelevant).map(|(r, i)| r + state.reweight * i)),
                ),
            ]);
            Some((format!("prefscope-decomposition-{}", s.scorer.name()), table))
        }
        View::Dpo => {
            let r = state.dpo.result.as_ref()?;
            let table = OutputTable::new(vec![
                ("id".into(), Column::Text(r.ids.clone())),
                ("chosen_reward".into(), Column::Float(r.chosen_reward.clone())),
                ("rejected_reward".into(), Column::Float(r.rejected_reward.clone())),
                ("margin".into(), Column::Float(r.margin.clone())),
                ("loss".into(), Column::Float(r.loss.clone())),
            ]);
            Some(("prefscope-dpo-pairs".into(), table))
        }
        View::Pairs => {
            let p = state.pairs.as_ref()?;
            let t = state.tie_threshold;
            let f = |g: &dyn Fn(&prefscope_clip::pairs::PairProbabilities) -> f32| floats(p.pairs.iter().map(g));
            let table = OutputTable::new(vec![
                ("caption".into(), Column::Text(p.pairs.iter().map(|q| q.caption.clone()).collect())),
                ("p0".into(), f(&|q| q.p0)),
                ("p1".into(), f(&|q| q.p1)),
                ("label_0".into(), f(&|q| q.label_0)),
                ("predicted".into(), f(&|q| prefscope_clip::pairs::predicted(q, t))),
            ]);
            Some(("prefscope-pairs".into(), table))
        }
        View::Model => None,
    }
}

/// The table's bytes in `format`.
pub fn encode(table: &OutputTable, format: Format) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    match format {
        Format::Csv => table.write_csv(&mut out).map_err(|e| e.to_string())?,
        Format::Jsonl => table.write_jsonl(&mut out).map_err(|e| e.to_string())?,
        Format::Parquet => table.write_parquet(&mut out).map_err(|e| e.to_string())?,
    }
    Ok(out)
}

/// Offers `bytes` to the user as a file named `name`.
pub fn download(name: &str, bytes: &[u8], format: Format) -> Result<(), String> {
    let fail = |what: &str| format!("export {name}: {what}");
    let array = js_sys::Array::of1(&js_sys::Uint8Array::from(bytes));
    let options = web_sys::BlobPropertyBag::new();
    options.set_type(format.mime());
    let blob = web_sys::Blob::new_with_u8_array_sequence_and_options(&array, &options).map_err(|_| fail("no Blob"))?;
    let url = web_sys::Url::create_object_url_with_blob(&blob).map_err(|_| fail("no object URL"))?;
    let document = web_sys::window().and_then(|w| w.document()).ok_or_else(|| fail("no document"))?;
    let a: web_sys::HtmlAnchorElement =
        document.create_element("a").map_err(|_| fail("no anchor"))?.dyn_into().map_err(|_| fail("no anchor"))?;
    a.set_href(&url);
    a.set_download(name);
    a.click();
    let _ = web_sys::Url::revoke_object_url(&url);
    Ok(())
}
