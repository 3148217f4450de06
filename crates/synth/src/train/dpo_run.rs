//! The DPO demo run: a caption language model trained by maximum likelihood on the shapes
//! world (the reference), then fine-tuned with the DPO sigmoid loss on warm-over-cold caption
//! pairs (the policy). Held-out pairs are exported with per-token log-probabilities at an early
//! checkpoint and at the end. Deterministic from the seed on burn's CPU backend.

use std::time::Instant;

use burn::module::Module;
use burn::optim::{AdamWConfig, GradientsParams};
use burn::tensor::{Device, Tensor, TensorData};
use prefscope_core::{DpoRecord, DpoTable};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::caption_lm::{dpo_sigmoid_loss, token_logps, Batch, CaptionLm, LmConfig, Words};
use super::{learning_rate, scalar};
use crate::dpo_demo::{summarize, Summary};
use crate::text_pairs::{self, TextPair};

/// How long to train, and the model's shape.
#[derive(Clone, Debug, serde::Serialize)]
pub struct DpoBudget {
    pub seed: u64,
    /// One-object scenes (of 50) whose 9 warm × cold pairs are held out; the rest train.
    pub held_out_scenes: usize,
    pub mle_steps: usize,
    /// (prompt, caption) draws per maximum-likelihood step.
    pub mle_batch: usize,
    pub mle_learning_rate: f64,
    pub dpo_steps: usize,
    /// Pairs per DPO step.
    pub dpo_batch: usize,
    pub dpo_learning_rate: f64,
    /// AdamW's ε in the DPO stage. Well above the default, it keeps parameters whose gradient
    /// is tiny (those the pairs are not about) from taking full-size steps.
    pub dpo_epsilon: f64,
    pub beta: f64,
    /// DPO step after which the early checkpoint is exported.
    pub early_step: usize,
    /// Every this many DPO steps the held-out pairs are exported too: with the early and the
    /// last export, the run the DPO view opens on.
    pub export_every: usize,
    pub width: usize,
    pub layers: usize,
    pub log_every: usize,
}

impl Default for DpoBudget {
    fn default() -> Self {
        DpoBudget {
            seed: 11,
            held_out_scenes: 12,
            mle_steps: 600,
            mle_batch: 64,
            mle_learning_rate: 2e-3,
            dpo_steps: 300,
            dpo_batch: 32,
            dpo_learning_rate: 3e-4,
            dpo_epsilon: 3e-3,
            beta: crate::dpo_demo::BETA,
            early_step: 10,
            export_every: 50,
            width: 96,
            layers: 3,
            log_every: 25,
        }
    }
}

/// What the run did, for training.json.
#[derive(Clone, Debug, serde::Serialize)]
pub struct DpoLog {
    pub budget: DpoBudget,
    pub model: LmConfig,
    pub parameters: usize,
    pub seconds: f64,
    /// (step, stage, loss, seconds since start) every `log_every` steps of each stage.
    pub losses: Vec<(usize, &'static str, f32, f64)>,
    pub early: Summary,
    pub last: Summary,
}

pub struct DpoRun {
    pub early: Vec<DpoRecord>,
    pub last: Vec<DpoRecord>,
    /// (steps trained, export) every `export_every` steps, other than the early and last ones.
    pub checkpoints: Vec<(usize, Vec<DpoRecord>)>,
    pub log: DpoLog,
}

/// (prompt, completion) rows: every pair's chosen completion, then every rejected one.
fn pair_rows(pairs: &[TextPair]) -> Vec<(&str, &str)> {
    let side = |chosen: bool| {
        pairs.iter().map(move |p| (p.prompt.as_str(), if chosen { p.chosen.as_str() } else { p.rejected.as_str() }))
    };
    side(true).chain(side(false)).collect()
}

/// Per-token log-probs of the completions of `pairs` under `policy` and `reference` (both
/// without autodiff), as the rows of docs/DESIGN.md "DPO log-probabilities".
fn export(
    policy: &CaptionLm,
    reference: &CaptionLm,
    words: &Words,
    pairs: &[TextPair],
    context: usize,
    device: &Device,
) -> Result<Vec<DpoRecord>, String> {
    let mut out = Vec::with_capacity(pairs.len());
    for chunk in pairs.chunks(64) {
        let rows = pair_rows(chunk);
        let batch = Batch::new(words, &rows, false, context, device)?;
        let length = batch.inputs.dims()[1];
        let values = |model: &CaptionLm| {
            token_logps(model, &batch).into_data().try_to_vec::<f32>().map_err(|e| format!("{e:?}"))
        };
        let (p, r) = (values(policy)?, values(reference)?);
        let side = |row: usize| {
            let at = |v: &[f32]| batch.spans[row].clone().map(|t| v[row * length + t] as f64).collect::<Vec<f64>>();
            let tokens: Vec<String> = batch.scored[row].iter().map(|&id| words.word(id).to_string()).collect();
            (at(&p), at(&r), tokens)
        };
        for (k, pair) in chunk.iter().enumerate() {
            let (pc, rc, ct) = side(k);
            let (pr, rr, rt) = side(chunk.len() + k);
            out.push(DpoRecord {
                id: pair.id.clone(),
                prompt: Some(pair.prompt.clone()),
                chosen: Some(pair.chosen.clone()),
                rejected: Some(pair.rejected.clone()),
                policy_chosen_logps: pc.iter().sum(),
                policy_rejected_logps: pr.iter().sum(),
                reference_chosen_logps: rc.iter().sum(),
                reference_rejected_logps: rr.iter().sum(),
                chosen_length: Some(ct.len() as u32),
                rejected_length: Some(rt.len() as u32),
                policy_chosen_token_logps: Some(pc),
                policy_rejected_token_logps: Some(pr),
                reference_chosen_token_logps: Some(rc),
                reference_rejected_token_logps: Some(rr),
                chosen_tokens: Some(ct),
                rejected_tokens: Some(rt),
                preference_share: Some(pair.preference_share),
                ..DpoRecord::default()
            });
        }
    }
    Ok(out)
}

fn summary_of(records: &[DpoRecord], beta: f64) -> Result<Summary, String> {
    summarize(&DpoTable::from_records("held-out export", records.iter().cloned()), beta)
}

/// Trains the reference, then the policy, exporting the held-out pairs at `early_step` and at
/// the end. `progress` receives a line every `log_every` steps.
pub fn run(budget: &DpoBudget, mut progress: impl FnMut(&str)) -> Result<DpoRun, String> {
    if budget.early_step == 0 || budget.early_step > budget.dpo_steps {
        return Err(format!(
            "the early checkpoint ({}) must be within the DPO steps (1..={})",
            budget.early_step, budget.dpo_steps
        ));
    }
    let words = Words::new(&text_pairs::vocabulary());
    let config =
        LmConfig { width: budget.width, layers: budget.layers, mlp: 4 * budget.width, ..LmConfig::demo(words.len()) };
    let device = Device::flex().autodiff();
    device.seed(budget.seed);
    let plain = device.clone().inner();
    let mut model = CaptionLm::new(&config, &device);
    let parameters = model.num_params();
    let (train_pairs, held_out) = text_pairs::pairs(budget.seed, budget.held_out_scenes);
    let mut rng = ChaCha8Rng::seed_from_u64(budget.seed ^ 0x11e);
    let start = Instant::now();
    let mut losses = Vec::new();
    let mut record = |step: usize, total: usize, stage: &'static str, loss: f32, lr: f64| -> Result<(), String> {
        if !loss.is_finite() {
            return Err(format!("the {stage} loss diverged at step {step}"));
        }
        let seconds = start.elapsed().as_secs_f64();
        losses.push((step, stage, loss, seconds));
        progress(&format!("step {step:>5}/{total} {stage:<9} loss {loss:.4}  lr {lr:.2e}  {seconds:.0} s"));
        Ok(())
    };
    let logged = |step: usize, total: usize| step.is_multiple_of(budget.log_every.max(1)) || step + 1 == total;

    // The reference: maximum likelihood on every token after <bos>.
    let mut optimizer = AdamWConfig::new().with_weight_decay(0.01).init();
    for step in 0..budget.mle_steps {
        let draws: Vec<(String, String)> = (0..budget.mle_batch).map(|_| text_pairs::sample(&mut rng)).collect();
        let rows: Vec<(&str, &str)> = draws.iter().map(|(p, c)| (p.as_str(), c.as_str())).collect();
        let batch = Batch::new(&words, &rows, true, config.context, &device)?;
        let loss = token_logps(&model, &batch).sum().neg() / batch.mask.clone().sum();
        let lr = learning_rate(budget.mle_learning_rate, step, budget.mle_steps);
        let value = logged(step, budget.mle_steps).then(|| scalar(loss.clone()));
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optimizer.step(lr, model, grads);
        if let Some(value) = value {
            record(step, budget.mle_steps, "mle", value, lr)?;
        }
    }
    let reference = model.valid();

    // The reference's sequence log-probs of every training pair, computed once.
    let sums = |model: &CaptionLm, pairs: &[TextPair], device: &Device| -> Result<(Vec<f32>, Vec<f32>), String> {
        let rows = pair_rows(pairs);
        let batch = Batch::new(&words, &rows, false, config.context, device)?;
        let s = token_logps(model, &batch).sum_dim(1).into_data().try_to_vec::<f32>().map_err(|e| format!("{e:?}"))?;
        Ok((s[..pairs.len()].to_vec(), s[pairs.len()..].to_vec()))
    };
    let (mut ref_chosen, mut ref_rejected) = (Vec::new(), Vec::new());
    for chunk in train_pairs.chunks(64) {
        let (c, r) = sums(&reference, chunk, &plain)?;
        ref_chosen.extend(c);
        ref_rejected.extend(r);
    }

    // The policy: DPO from the reference, epochs over the shuffled training pairs.
    let mut optimizer = AdamWConfig::new().with_weight_decay(0.0).with_epsilon(budget.dpo_epsilon as f32).init();
    let mut order: Vec<usize> = Vec::new();
    let mut early = Vec::new();
    let mut checkpoints = Vec::new();
    for step in 0..budget.dpo_steps {
        if order.len() < budget.dpo_batch {
            let mut epoch: Vec<usize> = (0..train_pairs.len()).collect();
            epoch.shuffle(&mut rng);
            order.extend(epoch);
        }
        let picked: Vec<usize> = order.drain(..budget.dpo_batch.min(order.len())).collect();
        let n = picked.len();
        let pairs: Vec<TextPair> = picked.iter().map(|&i| train_pairs[i].clone()).collect();
        let rows = pair_rows(&pairs);
        let batch = Batch::new(&words, &rows, false, config.context, &device)?;
        let policy = token_logps(&model, &batch).sum_dim(1).reshape([2 * n]);
        let constant = |v: &[f32]| {
            let values: Vec<f32> = picked.iter().map(|&i| v[i]).collect();
            Tensor::<1>::from_data(TensorData::new(values, [n]), &device)
        };
        let loss = dpo_sigmoid_loss(
            policy.clone().narrow(0, 0, n),
            policy.narrow(0, n, n),
            constant(&ref_chosen),
            constant(&ref_rejected),
            budget.beta,
        );
        let lr = learning_rate(budget.dpo_learning_rate, step, budget.dpo_steps);
        let value = logged(step, budget.dpo_steps).then(|| scalar(loss.clone()));
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optimizer.step(lr, model, grads);
        if let Some(value) = value {
            record(step, budget.dpo_steps, "dpo", value, lr)?;
        }
        let trained = step + 1;
        if trained == budget.early_step {
            early = export(&model.valid(), &reference, &words, &held_out, config.context, &plain)?;
        } else if budget.export_every > 0 && trained.is_multiple_of(budget.export_every) && trained < budget.dpo_steps {
            checkpoints.push((trained, export(&model.valid(), &reference, &words, &held_out, config.context, &plain)?));
        }
    }
    let last = export(&model.valid(), &reference, &words, &held_out, config.context, &plain)?;
    let log = DpoLog {
        budget: budget.clone(),
        model: config,
        parameters,
        seconds: start.elapsed().as_secs_f64(),
        losses,
        early: summary_of(&early, budget.beta)?,
        last: summary_of(&last, budget.beta)?,
    };
    Ok(DpoRun { early, last, checkpoints, log })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tiny_run_learns_and_exports_consistent_rows() {
        let budget = DpoBudget {
            seed: 2,
            held_out_scenes: 2,
            mle_steps: 30,
            mle_batch: 16,
            mle_learning_rate: 3e-3,
            dpo_steps: 12,
            dpo_batch: 16,
            dpo_learning_rate: 2e-3,
            early_step: 4,
            export_every: 6,
            width: 32,
            layers: 1,
            log_every: 1,
            ..DpoBudget::default()
        };
        let run = run(&budget, |_| {}).unwrap();
        assert_eq!(
            run.checkpoints.iter().map(|(step, records)| (*step, records.len())).collect::<Vec<_>>(),
            [(6, run.last.len())]
        );
        let stage = |s: &str| run.log.losses.iter().filter(|l| l.1 == s).map(|l| l.2).collect::<Vec<_>>();
        let (mle, dpo) = (stage("mle"), stage("dpo"));
        assert!(mle[mle.len() - 1] < mle[0] - 0.5, "maximum likelihood {mle:?}");
        // DPO starts at −log σ(0) = ln 2, the policy being the reference.
        assert!((dpo[0] - std::f32::consts::LN_2).abs() < 1e-4, "{dpo:?}");
        assert!(dpo[dpo.len() - 1] < dpo[0], "{dpo:?}");
        for records in [&run.early, &run.last] {
            assert_eq!(records.len(), 18);
            for r in records.iter() {
                let tokens = r.chosen_tokens.as_ref().unwrap();
                assert_eq!(tokens.join(" "), format!("{} <eos>", r.chosen.as_ref().unwrap()));
                let per_token = r.policy_chosen_token_logps.as_ref().unwrap();
                assert_eq!(per_token.len(), tokens.len());
                assert!((per_token.iter().sum::<f64>() - r.policy_chosen_logps).abs() < 1e-9);
                assert!(per_token.iter().all(|&v| v < 0.0));
            }
        }
        // Held-out rewards moved towards the warm captions.
        assert!(run.log.last.reward_margin > 0.0, "{:?}", run.log.last);
        assert!(run.log.last.reward_margin > run.log.early.reward_margin, "{:?} {:?}", run.log.early, run.log.last);
    }
}
