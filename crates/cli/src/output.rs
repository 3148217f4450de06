//! Where results go: `--format json|csv|jsonl|parquet` to `--out FILE` or stdout.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use clap::ValueEnum;
use prefscope_core::io::write::{metrics_json, OutputTable};
use serde_json::{json, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Json,
    Csv,
    Jsonl,
    Parquet,
}

/// Errors the command reports; all become one line on stderr and exit code 2.
pub type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn sink(out: Option<&PathBuf>) -> Result<Box<dyn Write + Send>> {
    Ok(match out {
        Some(path) => {
            Box::new(BufWriter::new(File::create(path).map_err(|e| format!("cannot write {}: {e}", path.display()))?))
        }
        None => Box::new(BufWriter::new(std::io::stdout())),
    })
}

/// Writes `{"metrics": …, "pairs": […]}` for JSON; the rows alone for the tabular formats,
/// with the metrics summarised on stderr so they are not lost.
pub fn write_report(
    format: OutputFormat,
    out: Option<&PathBuf>,
    metrics: &BTreeMap<String, f64>,
    rows: &OutputTable,
) -> Result<()> {
    write(format, out, rows, true, || json!({ "metrics": metrics_json(metrics), "pairs": rows.json_rows() }))?;
    if format != OutputFormat::Json {
        eprintln!("{}", metrics_summary(metrics));
    }
    Ok(())
}

/// Writes `{"pairs": […], "summary": {…}}` for JSON; the rows alone for the tabular formats,
/// with the summary on stderr.
pub fn write_summarised(format: OutputFormat, out: Option<&PathBuf>, summary: Value, rows: &OutputTable) -> Result<()> {
    if format != OutputFormat::Json {
        eprintln!("{summary}");
    }
    write(format, out, rows, true, || json!({ "pairs": rows.json_rows(), "summary": summary }))
}

/// Writes `document` for JSON; the rows alone for the tabular formats, with `summary` on stderr.
pub fn write_document(
    format: OutputFormat,
    out: Option<&PathBuf>,
    rows: &OutputTable,
    document: Value,
    summary: &str,
) -> Result<()> {
    if format != OutputFormat::Json {
        eprintln!("{summary}");
    }
    write(format, out, rows, true, || document)
}

/// Writes `{"rows": […]}` for JSON (`embed`, `score`), the rows themselves otherwise.
pub fn write_rows(format: OutputFormat, out: Option<&PathBuf>, rows: &OutputTable) -> Result<()> {
    write(format, out, rows, false, || json!({ "rows": rows.json_rows() }))
}

/// The JSON document for `--format json` (indented when `pretty`: reports are read by people,
/// embedding rows by programs), the table for the others.
fn write(
    format: OutputFormat,
    out: Option<&PathBuf>,
    rows: &OutputTable,
    pretty: bool,
    document: impl FnOnce() -> Value,
) -> Result<()> {
    let mut w = sink(out)?;
    match format {
        OutputFormat::Json => {
            if pretty {
                serde_json::to_writer_pretty(&mut w, &document())?;
            } else {
                serde_json::to_writer(&mut w, &document())?;
            }
            w.write_all(b"\n")?;
        }
        OutputFormat::Jsonl => rows.write_jsonl(&mut w)?,
        OutputFormat::Csv => rows.write_csv(&mut w)?,
        OutputFormat::Parquet => {
            if out.is_none() {
                return Err("--format parquet needs --out FILE (Parquet is binary)".into());
            }
            rows.write_parquet(&mut w)?;
        }
    }
    w.flush()?;
    Ok(())
}

/// Metrics as aligned `name  value` lines.
pub fn metrics_summary(metrics: &BTreeMap<String, f64>) -> String {
    let width = metrics.keys().map(String::len).max().unwrap_or(0);
    metrics.iter().map(|(k, v)| format!("{k:<width$}  {v:.6}")).collect::<Vec<_>>().join("\n")
}
