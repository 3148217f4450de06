//! `prefscope groups`: annotator groups from labelled pairs with user ids (a mixture of
//! Bradley–Terry models fitted by MaxMin-RLHF's EM), against one model for everyone.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use clap::Args;
use prefscope_clip::pipeline::{embed_images_batched, resolve};
use prefscope_clip::Rgba;
use prefscope_core::io::read::{read_annotated_pairs, read_pairs, AnnotatedRows};
use prefscope_core::io::record::ImageRef;
use prefscope_core::io::write::{Column, OutputTable};
use prefscope_core::preference::gpm::{fit_gpm, GpmOptions};
use prefscope_core::preference::groups::{
    distinct_items, fit_groups, fit_prepared, prepare, worst_group, AnnotatedPairs, GroupFit, GroupOptions,
};
use prefscope_gpu::{block_on, Gpu, GroupsError};
use serde_json::{json, Value};

use crate::clip::{load, ModelArgs};
use crate::device::{self, Device};
use crate::output::{write_document, OutputFormat, Result};

#[derive(Args, Debug)]
pub struct GroupsArgs {
    /// JSON Lines or Parquet rows: `user_id`, `features_0` and `features_1` (the two items'
    /// features, arrays of one width), `label_0` (1: item 0 preferred, 0: item 1, 0.5: tie).
    /// With `--model`: Pick-a-Pic pairs (`caption`, `jpg_0`, `jpg_1`, `label_0`, `user_id`).
    #[arg(long)]
    pub input: PathBuf,
    /// Model directory: each image's L2-normalised embedding is its feature vector, so each
    /// group's reward is a direction in the model's embedding space.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Where the towers (with `--model`) and the EM fit run: the fit's kernels compute in f32
    /// on a GPU (rewards within about 1e-4 of the CPU's f64).
    #[arg(long, value_enum, default_value = "auto")]
    pub device: Device,
    /// The number of groups; chosen by held-out log-likelihood among 1..=--max-k when absent.
    #[arg(long)]
    pub k: Option<usize>,
    #[arg(long, default_value_t = 6)]
    pub max_k: usize,
    /// Soft responsibilities instead of MaxMin-RLHF's hard assignment of each user.
    #[arg(long)]
    pub soft: bool,
    /// Also fit a general preference model (GPM) head on the same features and count the
    /// cyclic triads (a ≻ b ≻ c ≻ a) it finds among the items: preferences no single reward
    /// can hold.
    #[arg(long)]
    pub gpm: bool,
    /// Width of the GPM embedding (even).
    #[arg(long, default_value_t = 4)]
    pub gpm_dim: usize,
    /// Gradient steps of the GPM fit.
    #[arg(long, default_value_t = 300)]
    pub gpm_steps: usize,
    /// L2 penalty of each group's logistic regression.
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    pub ridge: f64,
    #[arg(long, value_enum, default_value = "json")]
    pub format: OutputFormat,
    /// Output file (stdout when absent).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub fn run(args: &GroupsArgs) -> Result<()> {
    let name = args.input.display().to_string();
    let bytes = std::fs::read(&args.input).map_err(|e| format!("{name}: cannot read: {e}"))?;
    let (rows, gpu) = match &args.model {
        Some(model) => embedded_pairs(args, model, &name, Bytes::from(bytes))?,
        None => (read_annotated_pairs(&name, Bytes::from(bytes))?, None),
    };
    let pairs = AnnotatedPairs {
        users: &rows.users,
        dim: rows.dim,
        features_0: &rows.features_0,
        features_1: &rows.features_1,
        label_0: &rows.label_0,
    };
    let options =
        GroupOptions { k: args.k, max_k: args.max_k, soft: args.soft, ridge: args.ridge, ..GroupOptions::default() };
    let gpu = match (gpu, &args.model) {
        (Some(gpu), _) => Some(gpu),
        (None, Some(_)) => None,
        (None, None) => device::open(args.device)?,
    };
    let fit = match &gpu {
        Some(gpu) => fit_on_gpu(gpu, &pairs, &options, &name)?,
        None => fit_groups(&pairs, &options).map_err(|e| format!("{name}: {e}"))?,
    };
    // MaxMin's view: every distinct item (named by the first row and side it appears on).
    let items: Vec<(String, &[f64])> = distinct_items(&pairs)
        .into_iter()
        .map(|(i, side)| {
            let features = if side == 0 { &rows.features_0 } else { &rows.features_1 };
            (format!("{}/{side}", rows.ids[i]), &features[i * rows.dim..(i + 1) * rows.dim])
        })
        .collect();
    let flat: Vec<f64> = items.iter().flat_map(|(_, f)| f.iter().copied()).collect();
    let weights: Vec<Vec<f64>> = fit.groups.iter().map(|g| g.weights.clone()).collect();
    let worst = worst_group(&flat, rows.dim, &weights);
    let gpm = if args.gpm {
        let options = GpmOptions { dim: args.gpm_dim, steps: args.gpm_steps, ..GpmOptions::default() };
        let fit = fit_gpm(&pairs, &options).map_err(|e| format!("{name}: {e}"))?;
        json!({"dim": options.dim, "tau": options.tau, "loss": fit.loss, "accuracy": nan_null(fit.accuracy),
               "items": fit.items, "intransitive_triads": fit.intransitive_triads})
    } else {
        Value::Null
    };
    let document = json!({
        "users": fit.users.iter().map(|(u, g)| json!({"user_id": u, "group": g})).collect::<Vec<_>>(),
        "groups": fit.groups.iter().enumerate().map(|(g, s)| json!({
            "group": g, "users": s.users, "pairs": s.pairs, "accuracy": nan_null(s.accuracy),
        })).collect::<Vec<_>>(),
        "metrics": {
            "k": fit.k,
            "log_likelihood": fit.log_likelihood,
            "accuracy_single": nan_null(fit.accuracy_single),
            "accuracy_groups": nan_null(fit.accuracy_groups),
            "iterations": fit.iterations,
        },
        "candidates": fit.candidates.iter().map(|(k, ll)| json!({"k": k, "log_likelihood": ll})).collect::<Vec<_>>(),
        "items": items.iter().zip(&worst).map(|((item, _), (g, r))| json!({"item": item, "worst_group": g, "reward": r})).collect::<Vec<_>>(),
        "gpm": gpm,
    });
    let table = OutputTable::new(vec![
        ("user_id".into(), Column::Text(fit.users.iter().map(|(u, _)| u.clone()).collect())),
        ("group".into(), Column::Int(fit.users.iter().map(|(_, g)| *g as i64).collect())),
    ]);
    let summary = format!(
        "{} groups; held-out accuracy {:.4} with one model, {:.4} with the groups; held-out log-likelihood {:.4} per pair",
        fit.k, fit.accuracy_single, fit.accuracy_groups, fit.log_likelihood
    );
    write_document(args.format, args.out.as_ref(), &table, document, &summary)
}

/// The EM fit with its kernels on `gpu`; on the CPU, with a note, when the GPU cannot take
/// the pairs (a Hessian larger than a binding, features beyond its f32 sums) or fails.
fn fit_on_gpu(gpu: &Gpu, pairs: &AnnotatedPairs<'_>, options: &GroupOptions, name: &str) -> Result<GroupFit> {
    let prepared = prepare(pairs).map_err(|e| format!("{name}: {e}"))?;
    options.candidates(&prepared).map_err(|e| format!("{name}: {e}"))?;
    let fitted = match gpu.annotated_pairs(&prepared) {
        Ok(device) => block_on(fit_prepared(&prepared, options, &device)),
        Err(e) => Err(GroupsError::Gpu(e)),
    };
    match fitted {
        Ok(fit) => Ok(fit),
        Err(e) => {
            eprintln!("the groups are fitted on the CPU: {e}");
            Ok(fit_groups(pairs, options).map_err(|e| format!("{name}: {e}"))?)
        }
    }
}

/// Pick-a-Pic pairs with their annotators, each image's embedding as its features; and the
/// GPU the towers ran on, for the fit.
fn embedded_pairs(args: &GroupsArgs, model: &Path, name: &str, bytes: Bytes) -> Result<(AnnotatedRows, Option<Gpu>)> {
    let pairs = read_pairs(name, bytes)?;
    let mut users = Vec::with_capacity(pairs.len());
    for (i, p) in pairs.iter().enumerate() {
        match &p.user_id {
            Some(u) => users.push(u.clone()),
            None => {
                return Err(format!(
                    "{name}: row {}, column `user_id`: value is missing (annotator groups need each pair's annotator)",
                    i + 1
                )
                .into())
            }
        }
    }
    let model_args = ModelArgs::for_model(model, args.device, args.format);
    let encoder = load(&model_args)?;
    let limits = model_args.limits();
    let image = |i: usize| -> std::result::Result<Rgba, prefscope_clip::ClipError> {
        let (p, side) = (&pairs[i / 2], i % 2);
        let (r, column) = if side == 0 { (&p.jpg_0, "jpg_0") } else { (&p.jpg_1, "jpg_1") };
        match r {
            ImageRef::Bytes(b) => Rgba::decode_limited(&format!("{name} row {} {column}", i / 2 + 1), b, &limits),
            ImageRef::Path(path) => Rgba::open(&resolve(&args.input, path), &limits),
        }
    };
    let embedded =
        block_on(embed_images_batched(&encoder, 2 * pairs.len(), &encoder.preset(), &mut |i| image(i), &mut |_| {}))?;
    let dim = embedded.dim;
    let side = |s: usize| -> Vec<f64> {
        (0..pairs.len()).flat_map(|i| embedded.row(2 * i + s).iter().map(|&v| f64::from(v))).collect()
    };
    let rows = AnnotatedRows {
        ids: (1..=pairs.len()).map(|i| i.to_string()).collect(),
        users,
        dim,
        features_0: side(0),
        features_1: side(1),
        label_0: pairs.iter().map(|p| p.label_0).collect(),
    };
    Ok((rows, encoder.gpu().cloned()))
}

/// `null` for an undefined accuracy (no untied held-out pair).
fn nan_null(v: f64) -> Value {
    if v.is_finite() {
        json!(v)
    } else {
        Value::Null
    }
}
