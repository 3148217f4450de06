//! A small causal language model over shapes-world captions (one token per word), the DPO
//! demo's reference and, fine-tuned with the DPO sigmoid loss, its policy; and the per-token
//! log-probabilities of completions that the DPO export carries.

use std::collections::HashMap;

use burn::module::Module;
use burn::nn::attention::generate_autoregressive_mask;
use burn::nn::transformer::{TransformerEncoder, TransformerEncoderConfig, TransformerEncoderInput};
use burn::nn::{Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::activation::{log_sigmoid, log_softmax};
use burn::tensor::{Device, Int, Tensor, TensorData};

pub const BOS: &str = "<bos>";
pub const EOS: &str = "<eos>";

/// Word-level vocabulary: `<bos>` is 0, `<eos>` is 1, then the words in order.
#[derive(Clone, Debug)]
pub struct Words {
    words: Vec<String>,
    index: HashMap<String, u32>,
}

impl Words {
    pub fn new(words: &[&str]) -> Self {
        let words: Vec<String> = [BOS, EOS].into_iter().chain(words.iter().copied()).map(String::from).collect();
        let index = words.iter().enumerate().map(|(i, w)| (w.clone(), i as u32)).collect();
        Words { words, index }
    }

    pub fn len(&self) -> usize {
        self.words.len()
    }

    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    pub fn word(&self, id: u32) -> &str {
        &self.words[id as usize]
    }

    /// The ids of a text's space-separated words; an unknown word is an error naming it.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, String> {
        text.split_whitespace()
            .map(|w| {
                self.index.get(w).copied().ok_or_else(|| format!("word {w:?} of {text:?} is not in the vocabulary"))
            })
            .collect()
    }
}

/// The model's shape.
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct LmConfig {
    pub vocab: usize,
    pub width: usize,
    pub layers: usize,
    pub heads: usize,
    pub mlp: usize,
    /// Longest `<bos> prompt completion <eos>` sequence.
    pub context: usize,
}

impl LmConfig {
    /// A few hundred thousand parameters for the shapes-world vocabulary.
    pub fn demo(vocab: usize) -> Self {
        LmConfig { vocab, width: 96, layers: 3, heads: 4, mlp: 384, context: 40 }
    }
}

/// Token and position embeddings, pre-LayerNorm transformer blocks under a causal mask, a
/// final LayerNorm and the output head.
#[derive(Module, Debug)]
pub struct CaptionLm {
    tokens: Embedding,
    positions: Embedding,
    blocks: TransformerEncoder,
    norm: LayerNorm,
    head: Linear,
}

impl CaptionLm {
    /// A fresh model; burn's initialisers draw from `device`'s generator, so seed it first.
    pub fn new(config: &LmConfig, device: &Device) -> Self {
        CaptionLm {
            tokens: EmbeddingConfig::new(config.vocab, config.width).init(device),
            positions: EmbeddingConfig::new(config.context, config.width).init(device),
            blocks: TransformerEncoderConfig::new(config.width, config.mlp, config.heads, config.layers)
                .with_dropout(0.0)
                .with_norm_first(true)
                .init(device),
            norm: LayerNormConfig::new(config.width).init(device),
            head: LinearConfig::new(config.width, config.vocab).init(device),
        }
    }

    /// Next-token logits `[batch, length, vocab]` for token ids `[batch, length]`.
    pub fn forward(&self, ids: Tensor<2, Int>) -> Tensor<3> {
        let [batch, length] = ids.dims();
        let device = ids.device();
        let positions = Tensor::<1, Int>::arange(0..length as i64, &device).unsqueeze::<2>().expand([batch, length]);
        let x = self.tokens.forward(ids) + self.positions.forward(positions);
        let input = TransformerEncoderInput::new(x).mask_attn(generate_autoregressive_mask(batch, length, &device));
        self.head.forward(self.norm.forward(self.blocks.forward(input)))
    }
}

/// Sequences `<bos> prompt completion <eos>` as model inputs (all but the last token) and
/// targets (all but the first), padded with `<eos>`; `mask` is 1 where a target is scored.
pub struct Batch {
    pub inputs: Tensor<2, Int>,
    pub targets: Tensor<2, Int>,
    pub mask: Tensor<2>,
    /// Per row: the scored targets' ids, in order, and their positions along the length.
    pub scored: Vec<Vec<u32>>,
    pub spans: Vec<std::ops::Range<usize>>,
}

impl Batch {
    /// Scores the completion and its `<eos>` only, or (`whole`) every token after `<bos>`.
    pub fn new(
        words: &Words,
        rows: &[(&str, &str)],
        whole: bool,
        context: usize,
        device: &Device,
    ) -> Result<Self, String> {
        let mut sequences = Vec::with_capacity(rows.len());
        for (prompt, completion) in rows {
            let (p, c) = (words.encode(prompt)?, words.encode(completion)?);
            let mut ids = vec![0u32];
            ids.extend(&p);
            ids.extend(&c);
            ids.push(1);
            if ids.len() > context + 1 {
                return Err(format!(
                    "{prompt:?} + {completion:?} is {} tokens, past the model's context of {context}",
                    ids.len() - 1
                ));
            }
            let first_scored = if whole { 0 } else { p.len() };
            sequences.push((ids, first_scored));
        }
        let length = sequences.iter().map(|(ids, _)| ids.len() - 1).max().unwrap_or(1);
        let (n, mut inputs, mut targets, mut mask) = (rows.len(), Vec::new(), Vec::new(), Vec::new());
        let (mut scored, mut spans) = (Vec::with_capacity(n), Vec::with_capacity(n));
        for (ids, first) in &sequences {
            spans.push(*first..ids.len() - 1);
            let mut row = Vec::new();
            for t in 0..length {
                inputs.push(ids.get(t).copied().unwrap_or(1) as i64);
                let target = ids.get(t + 1).copied();
                targets.push(target.unwrap_or(1) as i64);
                let on = target.is_some() && t >= *first;
                mask.push(if on { 1.0f32 } else { 0.0 });
                if on {
                    row.extend(target);
                }
            }
            scored.push(row);
        }
        Ok(Batch {
            inputs: Tensor::from_data(TensorData::new(inputs, [n, length]), device),
            targets: Tensor::from_data(TensorData::new(targets, [n, length]), device),
            mask: Tensor::from_data(TensorData::new(mask, [n, length]), device),
            scored,
            spans,
        })
    }
}

/// Log-probabilities of the targets, zero where unscored: `[batch, length]`.
pub fn token_logps(model: &CaptionLm, batch: &Batch) -> Tensor<2> {
    let logps = log_softmax(model.forward(batch.inputs.clone()), 2);
    logps.gather(2, batch.targets.clone().unsqueeze_dim::<3>(2)).squeeze_dim::<2>(2) * batch.mask.clone()
}

/// prefscope-core's DPO sigmoid loss (`LossType::Sigmoid`) in burn ops, so autodiff gives its
/// gradient: the mean over pairs of `−logσ(β((πc − πref,c) − (πr − πref,r)))`.
pub fn dpo_sigmoid_loss(
    policy_chosen: Tensor<1>,
    policy_rejected: Tensor<1>,
    reference_chosen: Tensor<1>,
    reference_rejected: Tensor<1>,
    beta: f64,
) -> Tensor<1> {
    let delta = (policy_chosen - reference_chosen) - (policy_rejected - reference_rejected);
    log_sigmoid(delta.mul_scalar(beta)).mean().neg()
}

#[cfg(test)]
mod tests {
    use super::*;
    use prefscope_core::preference::dpo::pairwise::evaluate;
    use prefscope_core::preference::dpo::{FDivergence, LossType, PairLogps, PairwiseParams};

    #[test]
    fn the_burn_loss_is_cores_sigmoid_loss() {
        let device = Device::flex();
        let pc = [-3.0, -10.5, -1.25, -40.0, -7.0];
        let pr = [-4.0, -9.0, -6.5, -2.0, -7.5];
        let rc = [-3.5, -10.0, -2.0, -39.0, -6.0];
        let rr = [-3.0, -9.25, -6.0, -10.0, -8.0];
        let beta = 0.3;
        let t = |v: &[f64; 5]| Tensor::<1>::from_data(TensorData::new(v.map(|x| x as f32).to_vec(), [5]), &device);
        let burn_loss =
            dpo_sigmoid_loss(t(&pc), t(&pr), t(&rc), t(&rr), beta).into_data().try_to_vec::<f32>().unwrap()[0];
        let params = PairwiseParams { beta, ..PairwiseParams::default() };
        let p = PairLogps {
            policy_chosen: &pc,
            policy_rejected: &pr,
            reference_chosen: &rc,
            reference_rejected: &rr,
            chosen_length: None,
            rejected_length: None,
        };
        let core = evaluate(&p, &[(LossType::Sigmoid, 1.0)], &params).unwrap().metrics["loss"];
        assert_eq!(params.f_divergence, FDivergence::ReverseKl);
        assert!((burn_loss as f64 - core).abs() < 1e-5, "burn {burn_loss} vs core {core}");
    }

    #[test]
    fn only_completion_tokens_are_scored_and_the_model_is_causal() {
        let device = Device::flex();
        device.seed(5);
        let words = Words::new(&["describe", "one", "shape", "a", "red", "blue", "circle"]);
        let config = LmConfig { vocab: words.len(), width: 16, layers: 1, heads: 2, mlp: 32, context: 12 };
        let model = CaptionLm::new(&config, &device);
        let rows = [("describe one shape", "a red circle"), ("describe one shape", "a blue circle")];
        let batch = Batch::new(&words, &rows, false, config.context, &device).unwrap();
        let ids = |s: &str| words.encode(s).unwrap();
        assert_eq!(batch.scored[0], [ids("a red circle"), vec![1]].concat());
        assert_eq!(batch.spans[0], 3..7);
        let logps = token_logps(&model, &batch).into_data().try_to_vec::<f32>().unwrap();
        let length = logps.len() / 2;
        // Prompt positions unscored; the shared prefix "a" has the same log-prob in both rows
        // (nothing after it is visible), the colour words differ.
        assert!(logps[..3].iter().all(|&v| v == 0.0));
        assert!(logps[3] < 0.0 && (logps[3] - logps[length + 3]).abs() < 1e-6);
        assert!((logps[4] - logps[length + 4]).abs() > 1e-6);
        let error = |rows: &[(&str, &str)]| Batch::new(&words, rows, false, 12, &device).map(|_| ()).unwrap_err();
        assert!(error(&[("describe", "a green circle")]).contains("green"));
        assert!(error(&[("describe one shape", &"a red circle ".repeat(4))]).contains("context"));
    }
}
