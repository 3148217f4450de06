//! Ranked lists (README "Ranked lists"): one prompt per row with n ≥ 2 candidates, as arrays of
//! the same length: `rewards` (higher is better) or `ranks` (1 is best), and per candidate
//! either `policy_logps` (summed log-probs) and `lengths` (tokens) for a language model, or
//! `model_mse` and `reference_mse` (the denoising errors of the trained and the reference
//! model at one sampled timestep) for a diffusion model. JSON Lines or Parquet. Every row is
//! kept or the read fails naming it.

use bytes::Bytes;

use super::lists::read_list_rows;
use crate::error::{ErrorKind, InputError};
use crate::preference::dpo::ranked::{Candidates, RankedList};

/// The longest list read.
pub const MAX_CANDIDATES: usize = 1024;

/// Reads ranked lists; `name` picks the format (by extension) and names errors.
pub fn read_ranked(name: &str, bytes: Bytes) -> Result<Vec<RankedList>, InputError> {
    let columns = ["rewards", "ranks", "policy_logps", "lengths", "model_mse", "reference_mse"];
    let mut out = Vec::new();
    for mut row in read_list_rows(name, bytes, &columns, &[], "ranked lists")? {
        let from_ranks = row.columns.contains_key("ranks");
        let rewards = match (row.columns.remove("rewards"), row.columns.remove("ranks")) {
            (Some(r), None) => r,
            // Rank 1 is the best: as a reward, its negation.
            (None, Some(ranks)) => ranks.iter().map(|r| -r).collect(),
            (Some(_), Some(_)) => {
                return Err(InputError::new(
                    row.at.column("ranks"),
                    ErrorKind::InvalidValue("give `rewards` or `ranks`, not both".into()),
                ))
            }
            (None, None) => return Err(InputError::new(row.at.column("rewards"), ErrorKind::MissingValue)),
        };
        let n = rewards.len();
        if n < 2 {
            return Err(InputError::new(
                row.at.column("rewards"),
                ErrorKind::InvalidValue(format!("a list of {n}: a ranking needs at least two candidates")),
            ));
        }
        // The objectives compare every pair of a list: quadratic in its length.
        if n > MAX_CANDIDATES {
            return Err(InputError::new(
                row.at.column("rewards"),
                ErrorKind::InvalidValue(format!(
                    "a list of {n} candidates, past the {MAX_CANDIDATES} one list may hold"
                )),
            ));
        }
        let language = row.columns.contains_key("policy_logps") || row.columns.contains_key("lengths");
        let needed: [&'static str; 2] =
            if language { ["policy_logps", "lengths"] } else { ["model_mse", "reference_mse"] };
        let mut take = |c: &'static str| {
            row.columns.remove(c).ok_or_else(|| InputError::new(row.at.clone().column(c), ErrorKind::MissingValue))
        };
        let (a, b) = (take(needed[0])?, take(needed[1])?);
        for (column, values) in [("rewards", &rewards), (needed[0], &a), (needed[1], &b)] {
            if values.len() != n {
                let other = "rewards".to_string();
                return Err(InputError::new(
                    row.at.column(column),
                    ErrorKind::Ragged { len: values.len(), other, other_len: n },
                ));
            }
            if let Some(v) = values.iter().find(|v| !v.is_finite()) {
                return Err(InputError::new(row.at.column(column), ErrorKind::NonFinite(v.to_string())));
            }
        }
        let candidates = if language {
            if let Some(l) = b.iter().find(|l| **l <= 0.0) {
                return Err(InputError::new(
                    row.at.column("lengths"),
                    ErrorKind::InvalidValue(format!(
                        "a length of {l}: each candidate's log-probs are averaged over its tokens"
                    )),
                ));
            }
            Candidates::Language { policy_logps: a, lengths: b }
        } else {
            Candidates::Diffusion { model_mse: a, reference_mse: b }
        };
        out.push(RankedList { id: row.id, rewards, from_ranks, candidates });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<Vec<RankedList>, InputError> {
        read_ranked("r.jsonl", Bytes::from(text.to_string()))
    }

    #[test]
    fn lists_and_their_errors() {
        let rows =
            read("{\"id\": \"p\", \"ranks\": [2, 1, 3], \"policy_logps\": [-3, -2, -9], \"lengths\": [3, 2, 4]}\n")
                .unwrap();
        assert_eq!(rows[0].rewards, vec![-2.0, -1.0, -3.0]);
        let diffusion =
            read("{\"rewards\": [0.2, 0.9], \"model_mse\": [0.1, 0.2], \"reference_mse\": [0.1, 0.3]}\n").unwrap();
        assert!(
            matches!(&diffusion[0].candidates, Candidates::Diffusion { model_mse, .. } if model_mse == &[0.1, 0.2])
        );
        let neither = read("{\"rewards\": [0.2, 0.9], \"model_mse\": [0.1, 0.2]}\n").unwrap_err();
        assert_eq!(neither.location.column, Some("reference_mse"));
        let one = read("{\"rewards\": [1], \"policy_logps\": [-1], \"lengths\": [1]}\n").unwrap_err();
        assert!(one.to_string().contains("a list of 1"), "{one}");
        let ragged = read("{\"rewards\": [1, 2], \"policy_logps\": [-1], \"lengths\": [1, 1]}\n").unwrap_err();
        assert_eq!(ragged.location.column, Some("policy_logps"));
        let missing = read("{\"policy_logps\": [-1, -2], \"lengths\": [1, 1]}\n").unwrap_err();
        assert_eq!((missing.location.column, missing.kind), (Some("rewards"), ErrorKind::MissingValue));
        let ranks = read("{\"ranks\": [1, 2], \"model_mse\": [0.1, 0.2], \"reference_mse\": [0.1, 0.1]}\n").unwrap();
        let e = crate::preference::dpo::ranked::evaluate_lists("rankdpo", &ranks, None, 0.05).unwrap_err();
        assert!(e.to_string().contains("not ranks"), "{e}");
        let long = format!(
            "{{\"rewards\": [{}], \"model_mse\": [], \"reference_mse\": []}}\n",
            vec!["1"; MAX_CANDIDATES + 1].join(",")
        );
        assert!(read(&long).unwrap_err().to_string().contains("past the 1024"));
        let zero = read("{\"rewards\": [1, 2], \"policy_logps\": [-1, -2], \"lengths\": [0, 1]}\n").unwrap_err();
        assert!(zero.to_string().contains("a length of 0"), "{zero}");
    }
}
