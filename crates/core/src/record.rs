//! Row types for the input formats in DESIGN.md, and the columnar tables the formulas run on.

use serde::{Deserialize, Serialize};

use crate::error::{ErrorKind, InputError, Location};

/// One preference pair with exported log-probabilities (DESIGN.md "DPO log-probabilities").
/// Sequence values are sums over completion tokens.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct DpoRecord {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chosen: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected: Option<String>,
    pub policy_chosen_logps: f64,
    pub policy_rejected_logps: f64,
    pub reference_chosen_logps: f64,
    pub reference_rejected_logps: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_chosen_token_logps: Option<Vec<f64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_rejected_token_logps: Option<Vec<f64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_chosen_token_logps: Option<Vec<f64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_rejected_token_logps: Option<Vec<f64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chosen_tokens: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected_tokens: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chosen_length: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected_length: Option<u32>,
    /// Share of raters preferring `chosen` (for the idealized ranking accuracy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preference_share: Option<f64>,
    /// KTO's KL estimate inputs: log-probs of a mismatched (prompt, completion) under policy
    /// and reference. Optional; without them KTO runs with a zero KL term.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_kl_logps: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_kl_logps: Option<f64>,
}

/// One Diffusion-DPO sample: a pair at one sampled timestep with shared noise.
/// Several rows may share an `id` (several timesteps of one pair).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct DiffusionRecord {
    pub id: String,
    pub model_mse_chosen: f64,
    pub model_mse_rejected: f64,
    pub reference_mse_chosen: f64,
    pub reference_mse_rejected: f64,
}

/// A row of a scoring manifest (CSV or JSONL).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ManifestRow {
    pub prompt: String,
    pub image: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

/// A Pick-a-Pic style labelled pair; images are bytes or paths.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PickPair {
    pub caption: String,
    pub jpg_0: ImageRef,
    pub jpg_1: ImageRef,
    /// 1 when image 0 is preferred, 0 when image 1 is, 0.5 for a tie.
    pub label_0: f64,
}

/// An image given inline or by path/URL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ImageRef {
    Path(String),
    Bytes(Vec<u8>),
}

/// Per-token values of one side (chosen or rejected) in compressed-row layout: the tokens of
/// pair `i` are `offsets[i]..offsets[i + 1]`. Pairs without token arrays have empty ranges and
/// `present[i] == false`. This is also the layout the GPU's segmented reductions read.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TokenColumn {
    pub offsets: Vec<usize>,
    pub present: Vec<bool>,
    pub policy: Vec<f64>,
    pub reference: Vec<f64>,
    pub tokens: Vec<Option<Vec<String>>>,
}

impl TokenColumn {
    fn push(&mut self, policy: Option<Vec<f64>>, reference: Option<Vec<f64>>, tokens: Option<Vec<String>>) {
        if self.offsets.is_empty() {
            self.offsets.push(0);
        }
        let present = policy.is_some();
        self.policy.extend(policy.unwrap_or_default());
        self.reference.extend(reference.unwrap_or_default());
        self.offsets.push(self.policy.len());
        self.present.push(present);
        self.tokens.push(tokens);
    }

    /// Appends `n` pairs without token arrays.
    fn push_empty(&mut self, n: usize) {
        if self.offsets.is_empty() {
            self.offsets.push(0);
        }
        let end = self.policy.len();
        self.offsets.extend(std::iter::repeat_n(end, n));
        self.present.extend(std::iter::repeat_n(false, n));
        self.tokens.extend(std::iter::repeat_n(None, n));
    }

    /// Token range of pair `i`.
    pub fn range(&self, i: usize) -> std::ops::Range<usize> {
        self.offsets[i]..self.offsets[i + 1]
    }

    /// Whether any pair carries token arrays.
    pub fn any(&self) -> bool {
        self.present.iter().any(|&p| p)
    }
}

/// DPO pairs as columns: what the formulas, the GPU kernels and the views consume.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DpoTable {
    /// Name of the source, for error messages that point back at it.
    pub source: String,
    pub id: Vec<String>,
    pub prompt: Vec<Option<String>>,
    pub chosen: Vec<Option<String>>,
    pub rejected: Vec<Option<String>>,
    pub policy_chosen_logps: Vec<f64>,
    pub policy_rejected_logps: Vec<f64>,
    pub reference_chosen_logps: Vec<f64>,
    pub reference_rejected_logps: Vec<f64>,
    pub chosen_length: Vec<Option<u32>>,
    pub rejected_length: Vec<Option<u32>>,
    pub preference_share: Vec<Option<f64>>,
    pub policy_kl_logps: Vec<Option<f64>>,
    pub reference_kl_logps: Vec<Option<f64>>,
    pub chosen_tokens: TokenColumn,
    pub rejected_tokens: TokenColumn,
}

/// Validated columns for [`DpoTable::extend_columns`]; `logps` are policy chosen/rejected,
/// reference chosen/rejected.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PairColumns {
    pub id: Vec<String>,
    pub prompt: Vec<Option<String>>,
    pub chosen: Vec<Option<String>>,
    pub rejected: Vec<Option<String>>,
    pub logps: [Vec<f64>; 4],
    pub chosen_length: Vec<Option<u32>>,
    pub rejected_length: Vec<Option<u32>>,
    pub preference_share: Vec<Option<f64>>,
    pub policy_kl_logps: Vec<Option<f64>>,
    pub reference_kl_logps: Vec<Option<f64>>,
}

/// Which completion of a pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Chosen,
    Rejected,
}

impl Side {
    fn length_column(self) -> &'static str {
        match self {
            Side::Chosen => "chosen_length",
            Side::Rejected => "rejected_length",
        }
    }
}

impl DpoTable {
    pub fn new(source: impl Into<String>) -> Self {
        Self { source: source.into(), ..Self::default() }
    }

    pub fn len(&self) -> usize {
        self.id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.id.is_empty()
    }

    /// Appends a validated record (see `read::validate_dpo`); a missing length is taken from
    /// the token arrays when they exist.
    pub fn push(&mut self, r: DpoRecord) {
        let chosen_len = r.chosen_length.or(r.policy_chosen_token_logps.as_ref().map(|t| t.len() as u32));
        let rejected_len = r.rejected_length.or(r.policy_rejected_token_logps.as_ref().map(|t| t.len() as u32));
        self.id.push(r.id);
        self.prompt.push(r.prompt);
        self.chosen.push(r.chosen);
        self.rejected.push(r.rejected);
        self.policy_chosen_logps.push(r.policy_chosen_logps);
        self.policy_rejected_logps.push(r.policy_rejected_logps);
        self.reference_chosen_logps.push(r.reference_chosen_logps);
        self.reference_rejected_logps.push(r.reference_rejected_logps);
        self.chosen_length.push(chosen_len);
        self.rejected_length.push(rejected_len);
        self.preference_share.push(r.preference_share);
        self.policy_kl_logps.push(r.policy_kl_logps);
        self.reference_kl_logps.push(r.reference_kl_logps);
        self.chosen_tokens.push(r.policy_chosen_token_logps, r.reference_chosen_token_logps, r.chosen_tokens);
        self.rejected_tokens.push(r.policy_rejected_token_logps, r.reference_rejected_token_logps, r.rejected_tokens);
    }

    /// Appends whole columns of already validated pairs that carry no token arrays (the bulk
    /// path of columnar readers); every column must have `ids.len()` entries.
    pub fn extend_columns(&mut self, c: PairColumns) {
        let n = c.id.len();
        self.id.extend(c.id);
        self.prompt.extend(c.prompt);
        self.chosen.extend(c.chosen);
        self.rejected.extend(c.rejected);
        self.policy_chosen_logps.extend(c.logps[0].iter());
        self.policy_rejected_logps.extend(c.logps[1].iter());
        self.reference_chosen_logps.extend(c.logps[2].iter());
        self.reference_rejected_logps.extend(c.logps[3].iter());
        self.chosen_length.extend(c.chosen_length);
        self.rejected_length.extend(c.rejected_length);
        self.preference_share.extend(c.preference_share);
        self.policy_kl_logps.extend(c.policy_kl_logps);
        self.reference_kl_logps.extend(c.reference_kl_logps);
        self.chosen_tokens.push_empty(n);
        self.rejected_tokens.push_empty(n);
    }

    /// Builds a table from records in order.
    pub fn from_records(source: impl Into<String>, records: impl IntoIterator<Item = DpoRecord>) -> Self {
        let mut table = Self::new(source);
        for r in records {
            table.push(r);
        }
        table
    }

    /// Row `i` as a record (the inverse of [`DpoTable::push`], lengths included).
    pub fn record(&self, i: usize) -> DpoRecord {
        let tokens = |col: &TokenColumn, policy: bool| {
            col.present[i].then(|| {
                let r = col.range(i);
                if policy {
                    col.policy[r].to_vec()
                } else {
                    col.reference[r].to_vec()
                }
            })
        };
        DpoRecord {
            id: self.id[i].clone(),
            prompt: self.prompt[i].clone(),
            chosen: self.chosen[i].clone(),
            rejected: self.rejected[i].clone(),
            policy_chosen_logps: self.policy_chosen_logps[i],
            policy_rejected_logps: self.policy_rejected_logps[i],
            reference_chosen_logps: self.reference_chosen_logps[i],
            reference_rejected_logps: self.reference_rejected_logps[i],
            policy_chosen_token_logps: tokens(&self.chosen_tokens, true),
            policy_rejected_token_logps: tokens(&self.rejected_tokens, true),
            reference_chosen_token_logps: tokens(&self.chosen_tokens, false),
            reference_rejected_token_logps: tokens(&self.rejected_tokens, false),
            chosen_tokens: self.chosen_tokens.tokens[i].clone(),
            rejected_tokens: self.rejected_tokens.tokens[i].clone(),
            chosen_length: self.chosen_length[i],
            rejected_length: self.rejected_length[i],
            preference_share: self.preference_share[i],
            policy_kl_logps: self.policy_kl_logps[i],
            reference_kl_logps: self.reference_kl_logps[i],
        }
    }

    /// Completion lengths of one side as floats, or an error naming the first row that has
    /// neither a length column nor token arrays. `needed_by` says which computation asked.
    pub fn lengths(&self, side: Side, needed_by: &str) -> Result<Vec<f64>, InputError> {
        let col = match side {
            Side::Chosen => &self.chosen_length,
            Side::Rejected => &self.rejected_length,
        };
        col.iter()
            .enumerate()
            .map(|(i, l)| {
                l.map(f64::from).ok_or_else(|| {
                    InputError::new(
                        Location::file(&self.source).row(i as u64 + 1).column(side.length_column()),
                        ErrorKind::InvalidValue(format!(
                            "{needed_by} needs completion lengths: give `{}` or per-token arrays",
                            side.length_column()
                        )),
                    )
                })
            })
            .collect()
    }
}

/// Diffusion-DPO samples as columns.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DiffusionTable {
    pub source: String,
    pub id: Vec<String>,
    pub model_mse_chosen: Vec<f64>,
    pub model_mse_rejected: Vec<f64>,
    pub reference_mse_chosen: Vec<f64>,
    pub reference_mse_rejected: Vec<f64>,
}

impl DiffusionTable {
    pub fn new(source: impl Into<String>) -> Self {
        Self { source: source.into(), ..Self::default() }
    }

    pub fn len(&self) -> usize {
        self.id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.id.is_empty()
    }

    pub fn push(&mut self, r: DiffusionRecord) {
        self.id.push(r.id);
        self.model_mse_chosen.push(r.model_mse_chosen);
        self.model_mse_rejected.push(r.model_mse_rejected);
        self.reference_mse_chosen.push(r.reference_mse_chosen);
        self.reference_mse_rejected.push(r.reference_mse_rejected);
    }
}
