//! What the page or the embedding element asks for: attributes, the built folder's URL and
//! the device override, parsed once at mount.

use prefscope_clip::DtypeChoice;
use prefscope_gpu::DeviceChoice;
use serde::Deserialize;

/// The views of the page.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum View {
    #[default]
    Score,
    Decompose,
    Pairs,
    Dpo,
    Model,
}

impl View {
    pub const ALL: [View; 5] = [View::Score, View::Decompose, View::Pairs, View::Dpo, View::Model];

    pub fn parse(name: &str) -> Result<Self, String> {
        Ok(match name.trim().to_ascii_lowercase().as_str() {
            "score" => View::Score,
            "decompose" => View::Decompose,
            "pairs" => View::Pairs,
            "dpo" => View::Dpo,
            "model" => View::Model,
            other => return Err(format!("unknown view `{other}` (score, decompose, pairs, dpo, model)")),
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            View::Score => "score",
            View::Decompose => "decompose",
            View::Pairs => "pairs",
            View::Dpo => "dpo",
            View::Model => "model",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            View::Score => "Score",
            View::Decompose => "Decompose",
            View::Pairs => "Pairs",
            View::Dpo => "DPO",
            View::Model => "Model",
        }
    }
}

/// The JSON the loader passes to [`crate::mount`]; attribute values arrive as strings.
#[derive(Deserialize, Default)]
struct Raw {
    base: String,
    view: Option<String>,
    model: Option<String>,
    data: Option<String>,
    beta: Option<String>,
    reweight: Option<String>,
    device: Option<String>,
    dtype: Option<String>,
    #[serde(default)]
    full: bool,
}

/// Parsed options. Bad attribute values are kept as messages the page shows, not failures.
#[derive(Clone, Debug, PartialEq)]
pub struct Options {
    /// URL of the built folder (ends with `/`): the demo model and the DPO sample live there.
    pub base: String,
    pub view: View,
    /// URL prefix of a model laid out like a Hugging Face repository.
    pub model: Option<String>,
    /// URL of data for the view (DPO log-probabilities, pairs or a scoring manifest).
    pub data: Option<String>,
    pub beta: Option<f64>,
    pub reweight: Option<f32>,
    pub device: DeviceChoice,
    /// What the towers keep their matrices in (`dtype`: auto, f32, f16, q8).
    pub dtype: DtypeChoice,
    /// The whole application (navigation between views) rather than one embedded view.
    pub full: bool,
    pub problems: Vec<String>,
}

impl Options {
    pub fn parse(json: &str) -> Result<Self, String> {
        let raw: Raw = serde_json::from_str(json).map_err(|e| format!("prefscope: bad mount options: {e}"))?;
        let mut problems = Vec::new();
        let mut base = raw.base;
        if !base.ends_with('/') {
            base.push('/');
        }
        let view = match raw.view.as_deref().filter(|v| !v.trim().is_empty()) {
            None => View::Score,
            Some(v) => View::parse(v).unwrap_or_else(|e| {
                problems.push(e);
                View::Score
            }),
        };
        let beta = number("beta", raw.beta.as_deref(), &mut problems).filter(|b| {
            let ok = *b > 0.0;
            if !ok {
                problems.push(format!("beta must be positive, got {b}"));
            }
            ok
        });
        let reweight = number("reweight", raw.reweight.as_deref(), &mut problems).map(|w| w as f32);
        let device = device_choice(raw.device.as_deref().unwrap_or("")).unwrap_or_else(|e| {
            problems.push(e);
            DeviceChoice::Auto
        });
        let dtype = match raw.dtype.as_deref().map(str::trim).filter(|d| !d.is_empty()) {
            None => DtypeChoice::Auto,
            Some(d) => DtypeChoice::parse(d).unwrap_or_else(|e| {
                problems.push(e);
                DtypeChoice::Auto
            }),
        };
        let url = |v: Option<String>| v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
        Ok(Options {
            base,
            view,
            model: url(raw.model),
            data: url(raw.data),
            beta,
            reweight,
            device,
            dtype,
            full: raw.full,
            problems,
        })
    }
}

/// `device` as the element, the page's `?device=` and the JavaScript API take it.
pub fn device_choice(device: &str) -> Result<DeviceChoice, String> {
    match device.trim() {
        "" | "auto" => Ok(DeviceChoice::Auto),
        "webgpu" | "gpu" => Ok(DeviceChoice::Gpu),
        "cpu" => Ok(DeviceChoice::Cpu),
        other => Err(format!("unknown device `{other}` (auto, webgpu, cpu)")),
    }
}

fn number(name: &str, value: Option<&str>, problems: &mut Vec<String>) -> Option<f64> {
    let v = value?.trim();
    if v.is_empty() {
        return None;
    }
    match v.parse::<f64>() {
        Ok(x) if x.is_finite() => Some(x),
        _ => {
            problems.push(format!("{name} must be a number, got `{v}`"));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_parse_and_bad_values_become_messages() {
        let o = Options::parse(
            r#"{"base":"https://x/app","view":"dpo","beta":"0.2","reweight":"0.3","device":"cpu","dtype":"fp16"}"#,
        )
        .unwrap();
        assert_eq!(o.base, "https://x/app/");
        assert_eq!(o.view, View::Dpo);
        assert_eq!(o.beta, Some(0.2));
        assert_eq!(o.reweight, Some(0.3));
        assert_eq!(o.device, DeviceChoice::Cpu);
        assert_eq!(o.dtype, DtypeChoice::Exactly(prefscope_clip::Dtype::F16));
        assert!(o.problems.is_empty());

        let o = Options::parse(
            r#"{"base":"/","view":"charts","beta":"-1","reweight":"abc","device":"tpu","dtype":"int4"}"#,
        )
        .unwrap();
        assert_eq!(o.view, View::Score);
        assert_eq!(o.beta, None);
        assert_eq!(o.reweight, None);
        assert_eq!(o.dtype, DtypeChoice::Auto);
        assert_eq!(o.problems.len(), 5, "{:?}", o.problems);
        assert!(Options::parse("{").is_err());
    }
}
