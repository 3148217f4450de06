//! Format-independent row validation: every reader hands rows to a [`Sink`] through
//! [`RowSource`], and the sink turns them into table rows or located errors.

use crate::error::{ErrorKind, InputError, Location};
use crate::io::record::{DiffusionRecord, DiffusionTable, DpoRecord, DpoTable, UnpairedRecord, UnpairedTable};

use super::Preferences;

macro_rules! columns {
    ($($variant:ident => $name:literal),* $(,)?) => {
        /// The columns the readers know, by their names in docs/DESIGN.md "Formats".
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub(crate) enum Col { $($variant),* }
        impl Col {
            pub(crate) const ALL: &'static [Col] = &[$(Col::$variant),*];
            pub(crate) fn name(self) -> &'static str {
                match self { $(Col::$variant => $name),* }
            }
        }
    };
}

columns! {
    Id => "id",
    Prompt => "prompt",
    Chosen => "chosen",
    Rejected => "rejected",
    PolicyChosen => "policy_chosen_logps",
    PolicyRejected => "policy_rejected_logps",
    ReferenceChosen => "reference_chosen_logps",
    ReferenceRejected => "reference_rejected_logps",
    PolicyChosenTokens => "policy_chosen_token_logps",
    PolicyRejectedTokens => "policy_rejected_token_logps",
    ReferenceChosenTokens => "reference_chosen_token_logps",
    ReferenceRejectedTokens => "reference_rejected_token_logps",
    ChosenTokens => "chosen_tokens",
    RejectedTokens => "rejected_tokens",
    ChosenLength => "chosen_length",
    RejectedLength => "rejected_length",
    PreferenceShare => "preference_share",
    PolicyKl => "policy_kl_logps",
    ReferenceKl => "reference_kl_logps",
    Subset => "subset",
    Category => "category",
    Step => "step",
    ModelMseChosen => "model_mse_chosen",
    ModelMseRejected => "model_mse_rejected",
    ReferenceMseChosen => "reference_mse_chosen",
    ReferenceMseRejected => "reference_mse_rejected",
    Completion => "completion",
    Label => "label",
    PolicyLogps => "policy_logps",
    ReferenceLogps => "reference_logps",
    PolicyTokenLogps => "policy_token_logps",
    ReferenceTokenLogps => "reference_token_logps",
    CompletionTokens => "completion_tokens",
    CompletionLength => "completion_length",
    Batch => "batch",
    KlPolicy => "kl_policy_logps",
    KlReference => "kl_reference_logps",
}

impl Col {
    /// Maps every known column to its position among `names` (a header or a schema).
    pub(crate) fn positions<S: AsRef<str>>(names: &[S]) -> Vec<Option<usize>> {
        Col::ALL.iter().map(|c| names.iter().position(|n| n.as_ref() == c.name())).collect()
    }
}

/// A cell as a reader found it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Got<T> {
    /// The column does not exist (in this file, or in this JSON object).
    Absent,
    /// The column exists but this row holds null or an empty cell.
    Null,
    Value(T),
}

/// Typed access to one row. Errors are the kind only; the sink adds the location.
pub(crate) trait RowSource {
    fn number(&self, col: Col) -> Result<Got<f64>, ErrorKind>;
    /// A whole number, checked to be integral; signed so negative lengths can be reported.
    fn integer(&self, col: Col) -> Result<Got<i64>, ErrorKind>;
    fn text(&self, col: Col) -> Result<Got<String>, ErrorKind>;
    /// Text, or a number rendered as text (ids are often integers).
    fn id(&self, col: Col) -> Result<Got<String>, ErrorKind>;
    fn numbers(&self, col: Col) -> Result<Got<Vec<f64>>, ErrorKind>;
    fn texts(&self, col: Col) -> Result<Got<Vec<String>>, ErrorKind>;
    /// A boolean (an unpaired row's `label`): each format's own booleans; CSV, whose cells are
    /// text, takes `true`/`false` (any case) and `1`/`0`.
    fn boolean(&self, col: Col) -> Result<Got<bool>, ErrorKind>;
    /// Whether this row (or the file's header) has the column at all.
    fn has(&self, col: Col) -> bool;
}

/// Position of the row being read, for error locations.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RowPos {
    pub row: u64,
    pub line: Option<u64>,
}

pub(crate) enum TableMut<'a> {
    Dpo(&'a mut DpoTable),
    Diffusion(&'a mut DiffusionTable),
    /// Unpaired rows, which take the row path only (their labels and batches are checked there).
    Unpaired,
    Unknown,
}

// One per read; the size difference costs nothing.
#[allow(clippy::large_enum_variant)]
enum Kind {
    Unknown,
    Dpo(DpoTable),
    Diffusion(DiffusionTable),
    Unpaired(UnpairedTable),
}

/// Accumulates validated rows; decides DPO pairs, unpaired (KTO) rows or Diffusion-DPO from
/// the first row's columns (a header's, for CSV and Parquet).
pub(crate) struct Sink {
    file: String,
    kind: Kind,
    metadata: Vec<(String, String)>,
}

impl Sink {
    pub(crate) fn new(file: &str) -> Self {
        Self { file: file.to_string(), kind: Kind::Unknown, metadata: Vec::new() }
    }

    /// The file's own key-value metadata (Parquet), kept on the table it fills.
    pub(crate) fn set_metadata(&mut self, metadata: Vec<(String, String)>) {
        self.metadata = metadata;
    }

    pub(crate) fn location(&self, pos: Option<RowPos>, col: Option<Col>) -> Location {
        let mut loc = Location::file(&self.file);
        if let Some(pos) = pos {
            loc.row = Some(pos.row);
            loc.line = pos.line;
        }
        if let Some(col) = col {
            loc.column = Some(col.name());
        }
        loc
    }

    /// Checks a header-based format's columns before any row, so a missing column is reported
    /// once, for the file, rather than at row 1.
    pub(crate) fn check_header(&mut self, has: &dyn Fn(Col) -> bool) -> Result<(), InputError> {
        self.choose_kind(has)?;
        let missing = match &self.kind {
            Kind::Dpo(_) => required_dpo().find(|(seq, tok)| !has(*seq) && !has(*tok)).map(|(seq, _)| seq),
            Kind::Diffusion(_) => DIFFUSION.iter().copied().find(|c| !has(*c)),
            Kind::Unpaired(_) => std::iter::once((Col::Label, Col::Label))
                .chain(required_unpaired())
                .find(|(seq, tok)| !has(*seq) && !has(*tok))
                .map(|(seq, _)| seq),
            Kind::Unknown => None,
        };
        match missing {
            Some(col) => Err(InputError::new(self.location(None, Some(col)), ErrorKind::MissingColumn)),
            None => Ok(()),
        }
    }

    /// Unpaired when the first row (or the header) has `label`, `policy_logps` or
    /// `policy_token_logps`; a file that also has a pair's log-prob columns is refused rather
    /// than read as either.
    fn choose_kind(&mut self, has: &dyn Fn(Col) -> bool) -> Result<(), InputError> {
        if matches!(self.kind, Kind::Unknown) {
            let unpaired = UNPAIRED_MARKERS.iter().copied().find(|c| has(*c));
            self.kind = if DIFFUSION.iter().any(|c| has(*c)) {
                Kind::Diffusion(DiffusionTable::new(&self.file))
            } else if let Some(marker) = unpaired {
                let paired = required_dpo().flat_map(|(a, b)| [a, b]).find(|c| has(*c));
                if let Some(paired) = paired {
                    return Err(InputError::new(
                        self.location(None, Some(paired)),
                        ErrorKind::InvalidValue(format!(
                            "a file holds pairs (`{}`, …) or unpaired rows (`{}`, …), not both",
                            paired.name(),
                            marker.name()
                        )),
                    ));
                }
                Kind::Unpaired(UnpairedTable::new(&self.file))
            } else {
                Kind::Dpo(DpoTable::new(&self.file))
            };
        }
        Ok(())
    }

    /// Validates one row and appends it.
    pub(crate) fn push(&mut self, src: &dyn RowSource, pos: RowPos) -> Result<(), InputError> {
        if matches!(self.kind, Kind::Unknown) {
            // The first row's columns decide, with the row as the place of an error.
            self.choose_kind(&|c| src.has(c)).map_err(|mut e| {
                e.location.row = Some(pos.row);
                e.location.line = pos.line;
                e
            })?;
        }
        let file = self.file.clone();
        let file = &file;
        let at = |col: Col| {
            move |kind: ErrorKind| {
                InputError::new(
                    Location { file: file.clone(), row: Some(pos.row), line: pos.line, column: Some(col.name()) },
                    kind,
                )
            }
        };
        let default_id = || pos.row.to_string();
        match &mut self.kind {
            Kind::Dpo(table) => {
                let record = dpo_record(src, &at, default_id)?;
                if table.unnamed_row.is_none() && optional(src.id(Col::Id)).ok().flatten().is_none() {
                    table.unnamed_row = Some(pos.row);
                }
                table.push(record);
            }
            Kind::Unpaired(table) => table.push(unpaired_record(src, &at, default_id)?),
            Kind::Diffusion(table) => {
                let id = optional(src.id(Col::Id)).map_err(at(Col::Id))?.unwrap_or_else(default_id);
                let mut mse = [0.0; 4];
                for (slot, col) in mse.iter_mut().zip(DIFFUSION) {
                    let v = required(src.number(col)).map_err(at(col))?;
                    let v = finite(v).map_err(at(col))?;
                    if v < 0.0 {
                        return Err(at(col)(ErrorKind::InvalidValue(format!(
                            "a mean squared error cannot be negative, found {v}"
                        ))));
                    }
                    *slot = v;
                }
                table.push(DiffusionRecord {
                    id,
                    model_mse_chosen: mse[0],
                    model_mse_rejected: mse[1],
                    reference_mse_chosen: mse[2],
                    reference_mse_rejected: mse[3],
                });
            }
            Kind::Unknown => unreachable!("kind chosen above"),
        }
        Ok(())
    }

    /// Makes room for `rows` more rows (after `check_header`).
    pub(crate) fn reserve(&mut self, rows: usize) {
        match &mut self.kind {
            Kind::Dpo(t) => t.reserve(rows),
            Kind::Diffusion(t) => t.reserve(rows),
            Kind::Unpaired(t) => t.reserve(rows),
            Kind::Unknown => {}
        }
    }

    /// The table being filled, for readers with a bulk path (after `check_header`).
    pub(crate) fn table_mut(&mut self) -> TableMut<'_> {
        match &mut self.kind {
            Kind::Dpo(t) => TableMut::Dpo(t),
            Kind::Diffusion(t) => TableMut::Diffusion(t),
            Kind::Unpaired(_) => TableMut::Unpaired,
            Kind::Unknown => TableMut::Unknown,
        }
    }

    pub(crate) fn finish(self) -> Result<Preferences, InputError> {
        match self.kind {
            Kind::Dpo(mut t) if !t.is_empty() => {
                t.metadata = self.metadata;
                Ok(Preferences::Dpo(t))
            }
            Kind::Diffusion(t) if !t.is_empty() => Ok(Preferences::Diffusion(t)),
            Kind::Unpaired(mut t) if !t.is_empty() => {
                t.check()?;
                t.metadata = self.metadata;
                Ok(Preferences::Unpaired(t))
            }
            _ => Err(InputError::new(Location::file(&self.file), ErrorKind::Empty)),
        }
    }
}

pub(crate) const DIFFUSION: [Col; 4] =
    [Col::ModelMseChosen, Col::ModelMseRejected, Col::ReferenceMseChosen, Col::ReferenceMseRejected];

/// The four sequence log-prob columns, each with the token column that can stand in for it.
fn required_dpo() -> impl Iterator<Item = (Col, Col)> {
    [
        (Col::PolicyChosen, Col::PolicyChosenTokens),
        (Col::PolicyRejected, Col::PolicyRejectedTokens),
        (Col::ReferenceChosen, Col::ReferenceChosenTokens),
        (Col::ReferenceRejected, Col::ReferenceRejectedTokens),
    ]
    .into_iter()
}

/// Columns only unpaired (KTO) rows have; any of them makes a file unpaired.
const UNPAIRED_MARKERS: [Col; 3] = [Col::Label, Col::PolicyLogps, Col::PolicyTokenLogps];

/// An unpaired row's two sequence log-prob columns, each with its token column.
fn required_unpaired() -> impl Iterator<Item = (Col, Col)> {
    [(Col::PolicyLogps, Col::PolicyTokenLogps), (Col::ReferenceLogps, Col::ReferenceTokenLogps)].into_iter()
}

fn required<T>(got: Result<Got<T>, ErrorKind>) -> Result<T, ErrorKind> {
    match got? {
        Got::Absent => Err(ErrorKind::MissingColumn),
        Got::Null => Err(ErrorKind::MissingValue),
        Got::Value(v) => Ok(v),
    }
}

fn optional<T>(got: Result<Got<T>, ErrorKind>) -> Result<Option<T>, ErrorKind> {
    match got? {
        Got::Absent | Got::Null => Ok(None),
        Got::Value(v) => Ok(Some(v)),
    }
}

pub(crate) fn finite(v: f64) -> Result<f64, ErrorKind> {
    if v.is_finite() {
        Ok(v)
    } else {
        Err(ErrorKind::NonFinite(format_non_finite(v)))
    }
}

fn format_non_finite(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v > 0.0 {
        "inf".into()
    } else {
        "-inf".into()
    }
}

/// A per-token log-prob array, every value finite.
fn token_values<F, E>(src: &dyn RowSource, at: &F, col: Col) -> Result<Option<Vec<f64>>, InputError>
where
    F: Fn(Col) -> E,
    E: Fn(ErrorKind) -> InputError,
{
    let values = optional(src.numbers(col)).map_err(at(col))?;
    if let Some(values) = &values {
        for &v in values {
            finite(v).map_err(at(col))?;
        }
    }
    Ok(values)
}

/// A completion length: a whole number, not negative.
fn length_value<F, E>(src: &dyn RowSource, at: &F, col: Col) -> Result<Option<u32>, InputError>
where
    F: Fn(Col) -> E,
    E: Fn(ErrorKind) -> InputError,
{
    match optional(src.integer(col)).map_err(at(col))? {
        None => Ok(None),
        Some(n) if n < 0 => Err(at(col)(ErrorKind::NegativeLength(n))),
        Some(n) => {
            u32::try_from(n).map(Some).map_err(|_| at(col)(ErrorKind::InvalidValue(format!("length {n} is too large"))))
        }
    }
}

/// One completion's token arrays must agree with each other and with its length column
/// (`cols`: policy tokens, reference tokens, token strings, length).
fn check_token_lengths<F, E>(
    at: &F,
    policy: &Option<Vec<f64>>,
    reference: &Option<Vec<f64>>,
    strings: &Option<Vec<String>>,
    len: Option<u32>,
    cols: [Col; 4],
) -> Result<(), InputError>
where
    F: Fn(Col) -> E,
    E: Fn(ErrorKind) -> InputError,
{
    match (policy, reference) {
        (Some(_), None) => return Err(at(cols[1])(ErrorKind::MissingColumn)),
        (None, Some(_)) => return Err(at(cols[0])(ErrorKind::MissingColumn)),
        _ => {}
    }
    let lens = [
        policy.as_ref().map(Vec::len),
        reference.as_ref().map(Vec::len),
        strings.as_ref().map(Vec::len),
        len.map(|l| l as usize),
    ];
    // Compare each present entry with the first present one; report the later column.
    if let Some((first_idx, first_len)) = lens.iter().enumerate().find_map(|(i, l)| l.map(|l| (i, l))) {
        for (i, l) in lens.iter().enumerate().skip(first_idx + 1) {
            if let Some(l) = *l {
                if l != first_len {
                    return Err(at(cols[i])(ErrorKind::Ragged {
                        len: l,
                        other: cols[first_idx].name().into(),
                        other_len: first_len,
                    }));
                }
            }
        }
    }
    Ok(())
}

/// A sequence log-probability: the `seq` column, or the sum of the `tok` column; with both,
/// they must agree.
fn sequence_value<F, E>(
    src: &dyn RowSource,
    at: &F,
    seq: Col,
    tok: Col,
    token_values: &Option<Vec<f64>>,
) -> Result<f64, InputError>
where
    F: Fn(Col) -> E,
    E: Fn(ErrorKind) -> InputError,
{
    let given = match src.number(seq).map_err(at(seq))? {
        Got::Value(v) => Some(finite(v).map_err(at(seq))?),
        Got::Null if token_values.is_none() => return Err(at(seq)(ErrorKind::MissingValue)),
        Got::Absent if token_values.is_none() => return Err(at(seq)(ErrorKind::MissingColumn)),
        _ => None,
    };
    match (given, token_values) {
        (Some(v), Some(t)) => {
            let sum: f64 = t.iter().sum();
            let scale: f64 = t.iter().map(|x| x.abs()).sum();
            // Exports sum in float32; allow its rounding, catch real disagreement.
            if (sum - v).abs() > 1e-4 * scale.max(1.0) {
                return Err(at(tok)(ErrorKind::TokenSumMismatch { token_sum: sum, sequence: v }));
            }
            Ok(v)
        }
        (Some(v), None) => Ok(v),
        (None, Some(t)) => Ok(t.iter().sum()),
        (None, None) => unreachable!("checked above"),
    }
}

/// An optional finite number.
fn optional_finite<F, E>(src: &dyn RowSource, at: &F, col: Col) -> Result<Option<f64>, InputError>
where
    F: Fn(Col) -> E,
    E: Fn(ErrorKind) -> InputError,
{
    optional(src.number(col)).map_err(at(col))?.map(|v| finite(v).map_err(at(col))).transpose()
}

fn dpo_record<F, E>(src: &dyn RowSource, at: &F, default_id: impl Fn() -> String) -> Result<DpoRecord, InputError>
where
    F: Fn(Col) -> E,
    E: Fn(ErrorKind) -> InputError,
{
    let text = |col: Col| optional(src.text(col)).map_err(at(col));
    let tokens = |col: Col| token_values(src, at, col);
    let length = |col: Col| length_value(src, at, col);

    let id = optional(src.id(Col::Id)).map_err(at(Col::Id))?.unwrap_or_else(default_id);
    let policy_chosen_token_logps = tokens(Col::PolicyChosenTokens)?;
    let policy_rejected_token_logps = tokens(Col::PolicyRejectedTokens)?;
    let reference_chosen_token_logps = tokens(Col::ReferenceChosenTokens)?;
    let reference_rejected_token_logps = tokens(Col::ReferenceRejectedTokens)?;
    let chosen_tokens = optional(src.texts(Col::ChosenTokens)).map_err(at(Col::ChosenTokens))?;
    let rejected_tokens = optional(src.texts(Col::RejectedTokens)).map_err(at(Col::RejectedTokens))?;
    let chosen_length = length(Col::ChosenLength)?;
    let rejected_length = length(Col::RejectedLength)?;

    // A side's token arrays must agree with each other and with its length column.
    check_token_lengths(
        at,
        &policy_chosen_token_logps,
        &reference_chosen_token_logps,
        &chosen_tokens,
        chosen_length,
        [Col::PolicyChosenTokens, Col::ReferenceChosenTokens, Col::ChosenTokens, Col::ChosenLength],
    )?;
    check_token_lengths(
        at,
        &policy_rejected_token_logps,
        &reference_rejected_token_logps,
        &rejected_tokens,
        rejected_length,
        [Col::PolicyRejectedTokens, Col::ReferenceRejectedTokens, Col::RejectedTokens, Col::RejectedLength],
    )?;

    let sequence =
        |seq: Col, tok: Col, token_values: &Option<Vec<f64>>| sequence_value(src, at, seq, tok, token_values);

    let preference_share = match optional(src.number(Col::PreferenceShare)).map_err(at(Col::PreferenceShare))? {
        None => None,
        Some(v) => {
            let v = finite(v).map_err(at(Col::PreferenceShare))?;
            if !(0.0..=1.0).contains(&v) {
                return Err(at(Col::PreferenceShare)(ErrorKind::InvalidValue(format!(
                    "a share of raters must lie in [0, 1], found {v}"
                ))));
            }
            Some(v)
        }
    };
    // Names, numbers allowed (a category may be numbered).
    let name = |col: Col| optional(src.id(col)).map_err(at(col));
    let step = optional(src.integer(Col::Step)).map_err(at(Col::Step))?;
    let kl = |col: Col| optional_finite(src, at, col);

    Ok(DpoRecord {
        id,
        prompt: text(Col::Prompt)?,
        chosen: text(Col::Chosen)?,
        rejected: text(Col::Rejected)?,
        policy_chosen_logps: sequence(Col::PolicyChosen, Col::PolicyChosenTokens, &policy_chosen_token_logps)?,
        policy_rejected_logps: sequence(Col::PolicyRejected, Col::PolicyRejectedTokens, &policy_rejected_token_logps)?,
        reference_chosen_logps: sequence(
            Col::ReferenceChosen,
            Col::ReferenceChosenTokens,
            &reference_chosen_token_logps,
        )?,
        reference_rejected_logps: sequence(
            Col::ReferenceRejected,
            Col::ReferenceRejectedTokens,
            &reference_rejected_token_logps,
        )?,
        policy_chosen_token_logps,
        policy_rejected_token_logps,
        reference_chosen_token_logps,
        reference_rejected_token_logps,
        chosen_tokens,
        rejected_tokens,
        chosen_length,
        rejected_length,
        preference_share,
        policy_kl_logps: kl(Col::PolicyKl)?,
        reference_kl_logps: kl(Col::ReferenceKl)?,
        subset: name(Col::Subset)?,
        category: name(Col::Category)?,
        step,
    })
}

/// One unpaired (KTO) row, checked as a pair's side is.
fn unpaired_record<F, E>(
    src: &dyn RowSource,
    at: &F,
    default_id: impl Fn() -> String,
) -> Result<UnpairedRecord, InputError>
where
    F: Fn(Col) -> E,
    E: Fn(ErrorKind) -> InputError,
{
    let text = |col: Col| optional(src.text(col)).map_err(at(col));
    let id = optional(src.id(Col::Id)).map_err(at(Col::Id))?.unwrap_or_else(default_id);
    let label = required(src.boolean(Col::Label)).map_err(at(Col::Label))?;
    let policy_token_logps = token_values(src, at, Col::PolicyTokenLogps)?;
    let reference_token_logps = token_values(src, at, Col::ReferenceTokenLogps)?;
    let completion_tokens = optional(src.texts(Col::CompletionTokens)).map_err(at(Col::CompletionTokens))?;
    let completion_length = length_value(src, at, Col::CompletionLength)?;
    check_token_lengths(
        at,
        &policy_token_logps,
        &reference_token_logps,
        &completion_tokens,
        completion_length,
        [Col::PolicyTokenLogps, Col::ReferenceTokenLogps, Col::CompletionTokens, Col::CompletionLength],
    )?;
    Ok(UnpairedRecord {
        id,
        prompt: text(Col::Prompt)?,
        completion: text(Col::Completion)?,
        label,
        policy_logps: sequence_value(src, at, Col::PolicyLogps, Col::PolicyTokenLogps, &policy_token_logps)?,
        reference_logps: sequence_value(
            src,
            at,
            Col::ReferenceLogps,
            Col::ReferenceTokenLogps,
            &reference_token_logps,
        )?,
        policy_token_logps,
        reference_token_logps,
        completion_tokens,
        completion_length,
        batch: optional(src.integer(Col::Batch)).map_err(at(Col::Batch))?,
        kl_policy_logps: optional_finite(src, at, Col::KlPolicy)?,
        kl_reference_logps: optional_finite(src, at, Col::KlReference)?,
    })
}
