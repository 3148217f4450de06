//! `prefscope dpo`: reads DPO (or Diffusion-DPO) log-probabilities and reports TRL's metrics.

use std::path::PathBuf;

use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use prefscope_core::io::read::{read_preferences, Input, Preferences, Progress};
use prefscope_core::io::write::{Column, OutputTable};
use prefscope_core::preference::dpo::ranked::{evaluate_lists, RANKED_OBJECTIVES};
use prefscope_core::preference::report::{report, ReportOptions};
use prefscope_gpu::block_on;

use crate::device::{self, Device};
use crate::output::{write_report, OutputFormat, Result};

#[derive(Args, Debug)]
pub struct DpoArgs {
    /// Pairs in JSON Lines, CSV or Parquet (docs/DESIGN.md "DPO log-probabilities" or
    /// "Diffusion-DPO rows").
    #[arg(long)]
    pub input: PathBuf,
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

/// `--loss pro|smpo|rankdpo`: ranked lists, one per prompt (README "Ranked lists").
fn run_ranked(args: &DpoArgs, objective: &str) -> Result<()> {
    let name = args.input.display().to_string();
    let bytes = std::fs::read(&args.input).map_err(|e| format!("{name}: cannot read: {e}"))?;
    let lists = prefscope_core::io::read::read_ranked(&name, bytes::Bytes::from(bytes))?;
    let evaluation = evaluate_lists(objective, &lists, args.beta, args.sft_weight)?;
    let table = OutputTable::new(vec![
        ("id".into(), Column::Text(lists.into_iter().map(|l| l.id).collect())),
        ("loss".into(), Column::Float(evaluation.pairs.loss)),
    ]);
    write_report(args.format, args.out.as_ref(), &evaluation.metrics, &table)
}

pub fn run(args: &DpoArgs) -> Result<()> {
    if let Some(objective) = RANKED_OBJECTIVES.iter().find(|o| **o == args.loss.trim()) {
        return run_ranked(args, objective);
    }
    let bar = progress_bar(&args.input);
    let mut on_progress = |p: Progress| {
        if let Some(bar) = &bar {
            bar.set_length(p.total);
            bar.set_position(p.done);
        }
    };
    let data = read_preferences(Input::Path(&args.input), None, &mut on_progress)?;
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let request = ReportOptions {
        loss: Some(args.loss.clone()),
        weights: args.weights.clone(),
        beta: args.beta,
        label_smoothing: Some(args.label_smoothing),
        f_divergence: Some(args.f_divergence.clone()),
        f_alpha: Some(args.f_alpha),
    }
    .request()?;
    let result = match device::open(args.device)? {
        Some(gpu) => block_on(gpu.report(&data, &request))?,
        None => report(&data, &request)?,
    };
    if let Preferences::Diffusion(t) = &data {
        eprintln!("{} Diffusion-DPO rows, {} pairs", t.len(), result.ids.len());
    }
    write_report(args.format, args.out.as_ref(), result.metrics(), &result.pairs_table())
}
