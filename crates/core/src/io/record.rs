//! Row types for the input formats in docs/DESIGN.md "Formats", and the columnar tables the
//! formulas run on.

use serde::{Deserialize, Serialize};

use crate::error::{ErrorKind, InputError, Location};

/// One preference pair with exported log-probabilities (docs/DESIGN.md "DPO log-probabilities").
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
    /// The pair's subset and category (`--by subset|category` reports metrics per value).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subset: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// The training step of the evaluation this row belongs to (a constant `step` column).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<i64>,
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
    /// Who labelled it (Pick-a-Pic's `user_id`), when the file says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// For `--by subset|category`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subset: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
}

/// An image given inline or by path/URL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ImageRef {
    Path(String),
    Bytes(Vec<u8>),
}

/// An optional per-row value. Files tend to have a column for every row or for none, so no
/// storage is spent until the first row that has a value (a million pairs without prompts
/// cost nothing here).
#[derive(Debug, Clone, PartialEq)]
pub struct OptColumn<T> {
    len: usize,
    /// `None` while every row so far is `None`; otherwise one entry per row.
    values: Option<Vec<Option<T>>>,
}

impl<T> Default for OptColumn<T> {
    fn default() -> Self {
        Self { len: 0, values: None }
    }
}

impl<T: Clone> OptColumn<T> {
    fn materialise(&mut self) -> &mut Vec<Option<T>> {
        let len = self.len;
        self.values.get_or_insert_with(|| vec![None; len])
    }

    pub fn push(&mut self, v: Option<T>) {
        if v.is_some() || self.values.is_some() {
            self.materialise().push(v);
        }
        self.len += 1;
    }

    /// Appends `n` rows without a value.
    pub fn push_none(&mut self, n: usize) {
        if let Some(values) = &mut self.values {
            values.resize(self.len + n, None);
        }
        self.len += n;
    }

    /// Appends `n` rows; `None` for the whole batch means the column is absent there.
    pub fn extend(&mut self, rows: Option<Vec<Option<T>>>, n: usize) {
        match rows {
            Some(rows) if self.values.is_some() || rows.iter().any(Option::is_some) => {
                debug_assert_eq!(rows.len(), n);
                self.materialise().extend(rows);
                self.len += n;
            }
            _ => self.push_none(n),
        }
    }

    pub fn get(&self, i: usize) -> Option<&T> {
        self.values.as_ref()?.get(i)?.as_ref()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether any row has a value.
    pub fn any(&self) -> bool {
        self.values.as_ref().is_some_and(|v| v.iter().any(Option::is_some))
    }

    /// Whether every row has a value (false for an empty column).
    pub fn all(&self) -> bool {
        self.len > 0 && self.values.as_ref().is_some_and(|v| v.iter().all(Option::is_some))
    }

    pub fn iter(&self) -> impl Iterator<Item = Option<&T>> + '_ {
        (0..self.len).map(|i| self.get(i))
    }

    pub fn to_vec(&self) -> Vec<Option<T>> {
        self.iter().map(|v| v.cloned()).collect()
    }
}

/// Per-token values of one side (chosen or rejected) in compressed-row layout: the tokens of
/// pair `i` are `offsets[i]..offsets[i + 1]`; pairs without token arrays have empty ranges.
/// This is also the layout the GPU's segmented reductions read. Like [`OptColumn`], nothing
/// is stored until the first pair with tokens.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TokenColumn {
    rows: usize,
    /// Empty while no pair has tokens; otherwise `rows + 1` entries.
    offsets: Vec<usize>,
    present: OptColumn<bool>,
    pub policy: Vec<f64>,
    pub reference: Vec<f64>,
    /// Token strings, when the input gives them.
    pub tokens: OptColumn<Vec<String>>,
}

impl TokenColumn {
    fn push(&mut self, policy: Option<Vec<f64>>, reference: Option<Vec<f64>>, tokens: Option<Vec<String>>) {
        if policy.is_some() && self.offsets.is_empty() {
            self.offsets.resize(self.rows + 1, 0);
        }
        self.present.push(policy.as_ref().map(|_| true));
        self.policy.extend(policy.unwrap_or_default());
        self.reference.extend(reference.unwrap_or_default());
        if !self.offsets.is_empty() {
            self.offsets.push(self.policy.len());
        }
        self.tokens.push(tokens);
        self.rows += 1;
    }

    /// Appends `n` pairs without token arrays.
    fn push_empty(&mut self, n: usize) {
        if !self.offsets.is_empty() {
            let end = self.policy.len();
            self.offsets.resize(self.offsets.len() + n, end);
        }
        self.present.push_none(n);
        self.tokens.push_none(n);
        self.rows += n;
    }

    /// Token range of pair `i` (empty without tokens).
    pub fn range(&self, i: usize) -> std::ops::Range<usize> {
        if self.offsets.is_empty() {
            0..0
        } else {
            self.offsets[i]..self.offsets[i + 1]
        }
    }

    /// Offsets for all pairs (`rows + 1` entries), for kernels that read the layout directly.
    pub fn offsets(&self) -> std::borrow::Cow<'_, [usize]> {
        if self.offsets.is_empty() {
            std::borrow::Cow::Owned(vec![0; self.rows + 1])
        } else {
            std::borrow::Cow::Borrowed(&self.offsets)
        }
    }

    /// Whether pair `i` has token arrays.
    pub fn present(&self, i: usize) -> bool {
        self.present.get(i).is_some()
    }

    /// Whether any pair carries token arrays.
    pub fn any(&self) -> bool {
        self.present.any()
    }
}

/// DPO pairs as columns: what the formulas, the GPU kernels and the views consume.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DpoTable {
    /// Name of the source, for error messages that point back at it.
    pub source: String,
    pub id: Vec<String>,
    pub prompt: OptColumn<String>,
    pub chosen: OptColumn<String>,
    pub rejected: OptColumn<String>,
    pub policy_chosen_logps: Vec<f64>,
    pub policy_rejected_logps: Vec<f64>,
    pub reference_chosen_logps: Vec<f64>,
    pub reference_rejected_logps: Vec<f64>,
    pub chosen_length: OptColumn<u32>,
    pub rejected_length: OptColumn<u32>,
    pub preference_share: OptColumn<f64>,
    pub policy_kl_logps: OptColumn<f64>,
    pub reference_kl_logps: OptColumn<f64>,
    pub chosen_tokens: TokenColumn,
    pub rejected_tokens: TokenColumn,
    pub subset: OptColumn<String>,
    pub category: OptColumn<String>,
    pub step: OptColumn<i64>,
    /// The first row (1-based) whose id is its row number because the file gave none: pairs
    /// cannot be matched across evaluations by such ids.
    pub unnamed_row: Option<u64>,
    /// The file's key-value metadata (Parquet; the export callback writes `trl.global_step`).
    pub metadata: Vec<(String, String)>,
}

/// Validated columns for [`DpoTable::extend_columns`]; `logps` are policy chosen/rejected,
/// reference chosen/rejected; `None` marks a column the batch does not have.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PairColumns {
    pub id: Vec<String>,
    pub prompt: Option<Vec<Option<String>>>,
    pub chosen: Option<Vec<Option<String>>>,
    pub rejected: Option<Vec<Option<String>>>,
    pub logps: [Vec<f64>; 4],
    pub chosen_length: Option<Vec<Option<u32>>>,
    pub rejected_length: Option<Vec<Option<u32>>>,
    pub preference_share: Option<Vec<Option<f64>>>,
    pub policy_kl_logps: Option<Vec<Option<f64>>>,
    pub reference_kl_logps: Option<Vec<Option<f64>>>,
    pub subset: Option<Vec<Option<String>>>,
    pub category: Option<Vec<Option<String>>>,
    pub step: Option<Vec<Option<i64>>>,
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
        self.subset.push(r.subset);
        self.category.push(r.category);
        self.step.push(r.step);
        self.chosen_tokens.push(r.policy_chosen_token_logps, r.reference_chosen_token_logps, r.chosen_tokens);
        self.rejected_tokens.push(r.policy_rejected_token_logps, r.reference_rejected_token_logps, r.rejected_tokens);
    }

    /// Makes room for `rows` more rows in the columns every table has.
    pub fn reserve(&mut self, rows: usize) {
        self.id.reserve(rows);
        for column in [
            &mut self.policy_chosen_logps,
            &mut self.policy_rejected_logps,
            &mut self.reference_chosen_logps,
            &mut self.reference_rejected_logps,
        ] {
            column.reserve(rows);
        }
    }

    /// Appends whole columns of already validated pairs that carry no token arrays (the bulk
    /// path of columnar readers); every column must have `ids.len()` entries.
    pub fn extend_columns(&mut self, c: PairColumns) {
        let n = c.id.len();
        self.id.extend(c.id);
        self.prompt.extend(c.prompt, n);
        self.chosen.extend(c.chosen, n);
        self.rejected.extend(c.rejected, n);
        self.policy_chosen_logps.extend(c.logps[0].iter());
        self.policy_rejected_logps.extend(c.logps[1].iter());
        self.reference_chosen_logps.extend(c.logps[2].iter());
        self.reference_rejected_logps.extend(c.logps[3].iter());
        self.chosen_length.extend(c.chosen_length, n);
        self.rejected_length.extend(c.rejected_length, n);
        self.preference_share.extend(c.preference_share, n);
        self.policy_kl_logps.extend(c.policy_kl_logps, n);
        self.reference_kl_logps.extend(c.reference_kl_logps, n);
        self.subset.extend(c.subset, n);
        self.category.extend(c.category, n);
        self.step.extend(c.step, n);
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

    /// The given rows, in that order, as a table of their own (a subset's pairs).
    pub fn select(&self, rows: &[usize]) -> Self {
        let mut table = Self::from_records(self.source.clone(), rows.iter().map(|&i| self.record(i)));
        table.metadata = self.metadata.clone();
        table
    }

    /// Row `i` as a record (the inverse of [`DpoTable::push`], lengths included).
    pub fn record(&self, i: usize) -> DpoRecord {
        let tokens = |col: &TokenColumn, policy: bool| {
            col.present(i).then(|| {
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
            prompt: self.prompt.get(i).cloned(),
            chosen: self.chosen.get(i).cloned(),
            rejected: self.rejected.get(i).cloned(),
            policy_chosen_logps: self.policy_chosen_logps[i],
            policy_rejected_logps: self.policy_rejected_logps[i],
            reference_chosen_logps: self.reference_chosen_logps[i],
            reference_rejected_logps: self.reference_rejected_logps[i],
            policy_chosen_token_logps: tokens(&self.chosen_tokens, true),
            policy_rejected_token_logps: tokens(&self.rejected_tokens, true),
            reference_chosen_token_logps: tokens(&self.chosen_tokens, false),
            reference_rejected_token_logps: tokens(&self.rejected_tokens, false),
            chosen_tokens: self.chosen_tokens.tokens.get(i).cloned(),
            rejected_tokens: self.rejected_tokens.tokens.get(i).cloned(),
            chosen_length: self.chosen_length.get(i).copied(),
            rejected_length: self.rejected_length.get(i).copied(),
            preference_share: self.preference_share.get(i).copied(),
            policy_kl_logps: self.policy_kl_logps.get(i).copied(),
            reference_kl_logps: self.reference_kl_logps.get(i).copied(),
            subset: self.subset.get(i).cloned(),
            category: self.category.get(i).cloned(),
            step: self.step.get(i).copied(),
        }
    }

    /// Completion lengths of one side as floats, or an error naming the first row that has
    /// neither a length column nor token arrays. `needed_by` says which computation asked.
    pub fn lengths(&self, side: Side, needed_by: &str) -> Result<Vec<f64>, InputError> {
        let col = match side {
            Side::Chosen => &self.chosen_length,
            Side::Rejected => &self.rejected_length,
        };
        if let Some(i) = (0..self.len()).find(|&i| col.get(i).is_none()) {
            return Err(InputError::new(
                Location::file(&self.source).row(i as u64 + 1).column(side.length_column()),
                ErrorKind::InvalidValue(format!(
                    "{needed_by} needs completion lengths: give `{}` or per-token arrays",
                    side.length_column()
                )),
            ));
        }
        Ok((0..self.len()).map(|i| col.get(i).map_or(f64::NAN, |&l| f64::from(l))).collect())
    }
}

/// One unpaired example as TRL's `KTOTrainer` trains on it (docs/DESIGN.md "Unpaired (KTO)
/// rows"): a completion labelled desirable (`label` true) or undesirable, its sequence
/// log-probabilities, and optionally the batch it was evaluated in and the log-probabilities of
/// its batch's mismatched "KL sequence" (the row's prompt with another row's completion).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct UnpairedRecord {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion: Option<String>,
    /// Desirable (`true`) or undesirable.
    pub label: bool,
    pub policy_logps: f64,
    pub reference_logps: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_token_logps: Option<Vec<f64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_token_logps: Option<Vec<f64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_tokens: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_length: Option<u32>,
    /// The evaluation batch the row belonged to (KTO's KL term and metrics are per batch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kl_policy_logps: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kl_reference_logps: Option<f64>,
}

/// Unpaired (KTO) rows as columns.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct UnpairedTable {
    pub source: String,
    pub id: Vec<String>,
    pub prompt: OptColumn<String>,
    pub completion: OptColumn<String>,
    pub label: Vec<bool>,
    pub policy_logps: Vec<f64>,
    pub reference_logps: Vec<f64>,
    pub completion_length: OptColumn<u32>,
    /// Per-token values of the completion, when the input gives them.
    pub tokens: TokenColumn,
    pub batch: OptColumn<i64>,
    pub kl_policy_logps: OptColumn<f64>,
    pub kl_reference_logps: OptColumn<f64>,
    /// The file's key-value metadata (Parquet; the export callback writes `trl.global_step`).
    pub metadata: Vec<(String, String)>,
}

impl UnpairedTable {
    pub fn new(source: impl Into<String>) -> Self {
        Self { source: source.into(), ..Self::default() }
    }

    pub fn len(&self) -> usize {
        self.id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.id.is_empty()
    }

    /// Makes room for `rows` more rows in the columns every table has.
    pub fn reserve(&mut self, rows: usize) {
        self.id.reserve(rows);
        self.label.reserve(rows);
        self.policy_logps.reserve(rows);
        self.reference_logps.reserve(rows);
    }

    /// Appends a validated record; a missing length is taken from the token arrays.
    pub fn push(&mut self, r: UnpairedRecord) {
        let length = r.completion_length.or(r.policy_token_logps.as_ref().map(|t| t.len() as u32));
        self.id.push(r.id);
        self.prompt.push(r.prompt);
        self.completion.push(r.completion);
        self.label.push(r.label);
        self.policy_logps.push(r.policy_logps);
        self.reference_logps.push(r.reference_logps);
        self.completion_length.push(length);
        self.tokens.push(r.policy_token_logps, r.reference_token_logps, r.completion_tokens);
        self.batch.push(r.batch);
        self.kl_policy_logps.push(r.kl_policy_logps);
        self.kl_reference_logps.push(r.kl_reference_logps);
    }

    /// Builds a table from records in order.
    pub fn from_records(source: impl Into<String>, records: impl IntoIterator<Item = UnpairedRecord>) -> Self {
        let mut table = Self::new(source);
        for r in records {
            table.push(r);
        }
        table
    }

    /// The checks that span rows: `batch` given for every row or for none, and the two KL
    /// log-probabilities for every row or for none (KTO's KL term averages over a whole batch).
    pub fn check(&self) -> Result<(), InputError> {
        let at = |i: usize, column: &'static str, message: String| {
            InputError::new(
                Location::file(&self.source).row(i as u64 + 1).column(column),
                ErrorKind::InvalidValue(message),
            )
        };
        if self.batch.any() {
            if let Some(i) = (0..self.len()).find(|&i| self.batch.get(i).is_none()) {
                return Err(at(
                    i,
                    "batch",
                    "`batch` must be given for every row or for none (without it the file is one batch)".into(),
                ));
            }
        }
        for i in 0..self.len() {
            match (self.kl_policy_logps.get(i), self.kl_reference_logps.get(i)) {
                (Some(_), None) => {
                    return Err(at(i, "kl_reference_logps", "`kl_policy_logps` is given but not this".into()))
                }
                (None, Some(_)) => {
                    return Err(at(i, "kl_policy_logps", "`kl_reference_logps` is given but not this".into()))
                }
                _ => {}
            }
        }
        if self.kl_policy_logps.any() {
            if let Some(i) = (0..self.len()).find(|&i| self.kl_policy_logps.get(i).is_none()) {
                return Err(at(
                    i,
                    "kl_policy_logps",
                    "the KL log-probabilities must be given for every row or for none (KTO's KL term is a batch mean)"
                        .into(),
                ));
            }
        }
        Ok(())
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

    /// Makes room for `rows` more rows.
    pub fn reserve(&mut self, rows: usize) {
        self.id.reserve(rows);
        for column in [
            &mut self.model_mse_chosen,
            &mut self.model_mse_rejected,
            &mut self.reference_mse_chosen,
            &mut self.reference_mse_rejected,
        ] {
            column.reserve(rows);
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opt_column_stores_nothing_until_a_value_arrives() {
        let mut c = OptColumn::default();
        c.push(None);
        c.push_none(3);
        assert!(c.values.is_none() && c.len() == 4 && !c.any());
        c.push(Some(7u32));
        c.extend(None, 2);
        c.extend(Some(vec![None, Some(9)]), 2);
        assert_eq!(c.to_vec(), vec![None, None, None, None, Some(7), None, None, None, Some(9)]);
        assert!(!c.all());
        let mut d = OptColumn::default();
        d.push(Some(1u32));
        assert!(d.all() && d.get(0) == Some(&1));
    }
}
