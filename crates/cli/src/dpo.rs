//! `prefscope dpo`: reads DPO (or Diffusion-DPO) log-probabilities and reports TRL's metrics,
//! their calibration and, for several evaluations of one run, what changed over its steps.

use std::path::{Path, PathBuf};

use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use prefscope_core::io::read::{read_preferences, Format, Input, Preferences, Progress};
use prefscope_core::io::write::{Column, OutputTable};
use prefscope_core::preference::dpo::ranked::{evaluate_lists, RANKED_OBJECTIVES};
use prefscope_core::preference::report::{report, Report, ReportOptions, ReportRequest};
use prefscope_core::preference::run;
use prefscope_core::preference::subsets::By;
use prefscope_gpu::block_on;

use crate::device::{self, Device};
use crate::output::{metrics_summary, write_document, write_report, OutputFormat, Result};

#[derive(Args, Debug)]
pub struct DpoArgs {
    /// Pairs in JSON Lines, CSV or Parquet (docs/DESIGN.md "DPO log-probabilities" or
    /// "Diffusion-DPO rows"). Repeat it, or name a folder, for a run: each file is one
    /// evaluation, at the step its Parquet metadata (`trl.global_step`), a constant `step`
    /// column or the last number in its name gives; pairs are followed across steps by `id`.
    #[arg(long, required = true)]
    pub input: Vec<PathBuf>,
    /// KTO's weight of the desirable terms (`KTOConfig.desirable_weight`).
    #[arg(long, allow_negative_numbers = true)]
    pub desirable_weight: Option<f64>,
    /// KTO's weight of the undesirable terms (`KTOConfig.undesirable_weight`).
    #[arg(long, allow_negative_numbers = true)]
    pub undesirable_weight: Option<f64>,
    /// Equal-width bins of the calibration metrics (`calibration/ece`, the reliability bins).
    #[arg(long, default_value_t = 10)]
    pub bins: usize,
    /// Also report every metric per value of the `subset` or `category` column.
    #[arg(long, value_parser = ["subset", "category"])]
    pub by: Option<String>,
    /// Loss types, comma-separated (TRL names: sigmoid, hinge, ipo, exo_pair, nca_pair, robust,
    /// bco_pair, sppo_hard, aot, aot_unpaired, apo_zero, apo_down, discopop, sft, sigmoid_norm;
    /// cdpo for TRL ≤ 0.28's label-smoothed sigmoid; simpo, cpo, orpo, kto, bco alone; for
    /// Diffusion-DPO rows diffusion_dpo or mapo; for ranked lists pro, or smpo and rankdpo for
    /// images, β defaulting to 5000 as for Diffusion-DPO).
    #[arg(long, default_value = "sigmoid")]
    pub loss: String,
    /// One weight per loss type, comma-separated (default 1 each): loss = Σ w_k·mean(loss_k).
    #[arg(long, value_delimiter = ',', allow_hyphen_values = true)]
    pub weights: Option<Vec<f64>>,
    /// β (default 0.1; 5000 for Diffusion-DPO).
    #[arg(long, allow_negative_numbers = true)]
    pub beta: Option<f64>,
    /// Label smoothing ε in [0, 0.5) (cdpo, robust, exo_pair, aot, simpo/cpo).
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub label_smoothing: f64,
    /// PRO's SFT weight λ (`--loss pro`; the authors' scripts use 0.05).
    #[arg(long, default_value_t = 0.05, allow_negative_numbers = true)]
    pub sft_weight: f64,
    /// f-divergence regulariser: reverse_kl, forward_kl, js_divergence, alpha_divergence.
    #[arg(long, default_value = "reverse_kl")]
    pub f_divergence: String,
    /// α of the alpha-divergence.
    #[arg(long, default_value_t = 0.5, allow_negative_numbers = true)]
    pub f_alpha: f64,
    /// Where to compute: `auto` uses a GPU unless the only adapter is a software fallback,
    /// `gpu` insists on one (software adapters included), `cpu` never opens one. The GPU
    /// computes in f32 after an exact f64 subtraction of log-probs (about 1e-6 relative of
    /// the CPU's f64 results).
    #[arg(long, value_enum, default_value = "auto")]
    pub device: Device,
    #[arg(long, value_enum, default_value = "json")]
    pub format: OutputFormat,
    /// Output file (stdout when absent).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Bar on stderr for inputs above a few megabytes; indicatif hides it when stderr is not a terminal.
fn progress_bar(path: &std::path::Path) -> Option<ProgressBar> {
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    (size > 4 << 20).then(|| {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{spinner} reading {msg} [{bar:30}] {percent}% ({eta})")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_message(path.display().to_string());
        bar
    })
}

/// The files `--input` names: each file, and each folder's JSON Lines, CSV and Parquet files
/// in name order.
fn input_files(inputs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for input in inputs {
        if !input.is_dir() {
            files.push(input.clone());
            continue;
        }
        let entries =
            std::fs::read_dir(input).map_err(|e| format!("{}: cannot read the folder: {e}", input.display()))?;
        let mut found: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && Format::from_name(&p.display().to_string()).is_ok())
            .collect();
        if found.is_empty() {
            return Err(format!("{}: the folder holds no .jsonl, .csv or .parquet file", input.display()).into());
        }
        found.sort();
        files.extend(found);
    }
    Ok(files)
}

/// `--loss pro|smpo|rankdpo`: ranked lists, one per prompt (README "Ranked lists").
fn run_ranked(args: &DpoArgs, input: &Path, objective: &str) -> Result<()> {
    let name = input.display().to_string();
    let bytes = std::fs::read(input).map_err(|e| format!("{name}: cannot read: {e}"))?;
    let lists = prefscope_core::io::read::read_ranked(&name, bytes::Bytes::from(bytes))?;
    let evaluation = evaluate_lists(objective, &lists, args.beta, args.sft_weight)?;
    let table = OutputTable::new(vec![
        ("id".into(), Column::Text(lists.into_iter().map(|l| l.id).collect())),
        ("loss".into(), Column::Float(evaluation.pairs.loss)),
    ]);
    write_report(args.format, args.out.as_ref(), &evaluation.metrics, &table)
}

fn read(path: &Path) -> Result<Preferences> {
    let bar = progress_bar(path);
    let mut on_progress = |p: Progress| {
        if let Some(bar) = &bar {
            bar.set_length(p.total);
            bar.set_position(p.done);
        }
    };
    let data = read_preferences(Input::Path(path), None, &mut on_progress)?;
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    Ok(data)
}

/// The files in order, read on all cores when there are several (a run's evaluations are
/// independent files); the first error in file order is reported.
fn read_all(files: &[PathBuf]) -> Result<Vec<Preferences>> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(files.len());
    if threads < 2 {
        return files.iter().map(|f| read(f)).collect();
    }
    let chunk = files.len().div_ceil(threads);
    let parts: Vec<std::result::Result<Vec<Preferences>, String>> = std::thread::scope(|s| {
        let handles: Vec<_> = files
            .chunks(chunk)
            .map(|part| s.spawn(move || part.iter().map(|f| read(f).map_err(|e| e.to_string())).collect()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err("a reading thread panicked".into()))).collect()
    });
    let mut data = Vec::with_capacity(files.len());
    for part in parts {
        data.extend(part?);
    }
    Ok(data)
}

fn evaluate<'a>(
    gpu: Option<&prefscope_gpu::Gpu>,
    data: &'a Preferences,
    request: &ReportRequest,
) -> Result<Report<'a>> {
    Ok(match gpu {
        Some(gpu) => block_on(gpu.report(data, request))?,
        None => report(data, request)?,
    })
}

pub fn run(args: &DpoArgs) -> Result<()> {
    let files = input_files(&args.input)?;
    if let Some(objective) = RANKED_OBJECTIVES.iter().find(|o| **o == args.loss.trim()) {
        let [input] = files.as_slice() else {
            return Err(format!("`--loss {objective}` reads one file of ranked lists, not {}", files.len()).into());
        };
        return run_ranked(args, input, objective);
    }
    let request = ReportOptions {
        loss: Some(args.loss.clone()),
        weights: args.weights.clone(),
        beta: args.beta,
        label_smoothing: Some(args.label_smoothing),
        f_divergence: Some(args.f_divergence.clone()),
        f_alpha: Some(args.f_alpha),
        bins: Some(args.bins),
        desirable_weight: args.desirable_weight,
        undesirable_weight: args.undesirable_weight,
    }
    .request()?;
    let by = args.by.as_deref().map(By::parse).transpose()?;
    let gpu = device::open(args.device)?;
    let data = read_all(&files)?;

    if let [Preferences::Diffusion(t)] = data.as_slice() {
        eprintln!("{} Diffusion-DPO rows", t.len());
    }
    let document = run::document(&data, &request, by, &|d| evaluate(gpu.as_ref(), d, &request))?;
    if let Some(note) = &document.note {
        eprintln!("{note}");
    }
    let summary = metrics_summary(&document.metrics);
    // The pairs as JSON only for the JSON document (the other formats write the rows).
    let json = if args.format == OutputFormat::Json { document.with_pairs() } else { serde_json::Value::Null };
    write_document(args.format, args.out.as_ref(), &document.rows, json, &summary)
}
