//! Helpers for the golden tests: fixture loading and the tolerance they are held to.
#![allow(dead_code)]

use serde_json::Value;

/// Loads `tests/fixtures/NAME` from the workspace root.
pub fn fixture(name: &str) -> Value {
    let path = format!("{}/../../tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Relative 1e-5, with an absolute floor of 1e-12 for values the reference computes as
/// `1 − σ(x)` in float64 (exactly 0 where the true value is ~1e-18).
pub fn close(ours: f64, reference: f64) -> bool {
    (ours - reference).abs() <= 1e-5 * reference.abs().max(ours.abs()) + 1e-12
}

#[track_caller]
pub fn assert_close(ours: f64, reference: f64, what: &str) {
    assert!(close(ours, reference), "{what}: ours {ours:e}, reference {reference:e}");
}

pub fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

pub fn floats(v: &Value) -> Vec<f64> {
    v.as_array().unwrap_or_else(|| panic!("not an array: {v}")).iter().map(f).collect()
}

pub fn floats32(v: &Value) -> Vec<f32> {
    floats(v).into_iter().map(|x| x as f32).collect()
}

pub fn matrix32(v: &Value) -> Vec<Vec<f32>> {
    v.as_array().unwrap().iter().map(floats32).collect()
}

/// The fixture's pairs as columns: (pc, pr, rc, rr, cl, rl, ids, kinds).
pub struct Pairs {
    pub ids: Vec<String>,
    pub kinds: Vec<String>,
    pub pc: Vec<f64>,
    pub pr: Vec<f64>,
    pub rc: Vec<f64>,
    pub rr: Vec<f64>,
    pub cl: Vec<f64>,
    pub rl: Vec<f64>,
}

impl Pairs {
    pub fn from(v: &Value) -> Self {
        let rows = v.as_array().unwrap();
        let col = |k: &str| rows.iter().map(|r| f(&r[k])).collect::<Vec<_>>();
        Pairs {
            ids: rows.iter().map(|r| r["id"].as_str().unwrap().to_string()).collect(),
            kinds: rows.iter().map(|r| r["kind"].as_str().unwrap().to_string()).collect(),
            pc: col("pc"),
            pr: col("pr"),
            rc: col("rc"),
            rr: col("rr"),
            cl: col("cl"),
            rl: col("rl"),
        }
    }

    /// Keeps the rows for which `keep(i)` holds.
    pub fn filter(&self, keep: impl Fn(usize) -> bool) -> Self {
        let pick = |v: &Vec<f64>| (0..v.len()).filter(|&i| keep(i)).map(|i| v[i]).collect();
        let picks = |v: &Vec<String>| (0..v.len()).filter(|&i| keep(i)).map(|i| v[i].clone()).collect();
        Pairs {
            ids: picks(&self.ids),
            kinds: picks(&self.kinds),
            pc: pick(&self.pc),
            pr: pick(&self.pr),
            rc: pick(&self.rc),
            rr: pick(&self.rr),
            cl: pick(&self.cl),
            rl: pick(&self.rl),
        }
    }

    pub fn subset(&self, name: Option<&str>) -> Self {
        match name {
            None | Some("all") => self.filter(|_| true),
            Some("normal") => self.filter(|i| self.kinds[i] == "normal"),
            Some("nonpositive") => self.filter(|i| self.pc[i] <= 0.0 && self.pr[i] <= 0.0),
            Some(other) => panic!("unknown subset {other}"),
        }
    }

    /// The rows repeated in order until there are `n` of them.
    pub fn cycled(&self, n: usize) -> Self {
        let len = self.pc.len();
        let cycle = |v: &Vec<f64>| (0..n).map(|i| v[i % len]).collect();
        Pairs {
            ids: (0..n).map(|i| self.ids[i % len].clone()).collect(),
            kinds: (0..n).map(|i| self.kinds[i % len].clone()).collect(),
            pc: cycle(&self.pc),
            pr: cycle(&self.pr),
            rc: cycle(&self.rc),
            rr: cycle(&self.rr),
            cl: cycle(&self.cl),
            rl: cycle(&self.rl),
        }
    }

    /// Rounds the log-probs to f32, as a reference run in float32 saw them.
    pub fn rounded_to_f32(&self) -> Self {
        let r = |v: &Vec<f64>| v.iter().map(|x| *x as f32 as f64).collect();
        Pairs { pc: r(&self.pc), pr: r(&self.pr), rc: r(&self.rc), rr: r(&self.rr), ..self.filter(|_| true) }
    }

    pub fn logps(&self) -> prefscope_core::preference::dpo::PairLogps<'_> {
        prefscope_core::preference::dpo::PairLogps {
            policy_chosen: &self.pc,
            policy_rejected: &self.pr,
            reference_chosen: &self.rc,
            reference_rejected: &self.rr,
            chosen_length: Some(&self.cl),
            rejected_length: Some(&self.rl),
        }
    }
}

/// Compares every metric the reference logged with ours.
#[track_caller]
pub fn assert_metrics(ours: &std::collections::BTreeMap<String, f64>, reference: &Value, case: &str) {
    for (k, v) in reference.as_object().unwrap() {
        let Some(r) = v.as_f64() else { continue };
        let o = ours.get(k).unwrap_or_else(|| panic!("{case}: metric {k} missing; have {:?}", ours.keys()));
        assert_close(*o, r, &format!("{case} {k}"));
    }
}
