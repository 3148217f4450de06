//! The architecture of a checkpoint, read from Hugging Face's config.json or open_clip's
//! open_clip_config.json. Every hyper-parameter comes from the file (with the defaults the
//! reference libraries use when a key is absent); anything this crate cannot run is refused
//! here, by name, before a byte of weights is read.

use prefscope_core::scoring::preprocess::{OPENAI_MEAN, OPENAI_STD};
use serde_json::{Map, Value};

use crate::error::ClipError;

/// The MLP's activation (`hidden_act` in transformers, `quick_gelu` in open_clip).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// `x·σ(1.702x)`: OpenAI's weights.
    QuickGelu,
    /// Exact (erf) GELU: laion / open_clip ViT-H-14, HPS v2.
    Gelu,
}

/// Which text position is pooled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pooling {
    /// The first position holding this id (transformers with a modern `eos_token_id`).
    FirstId(u32),
    /// `argmax(input_ids)`, the first maximum (open_clip; transformers when `eos_token_id` is 2).
    Argmax,
}

/// Where the weights come from: fixes tensor names and the tokenizer's conventions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// transformers `CLIPModel` (model.safetensors): pads with end-of-text.
    HuggingFace,
    /// open_clip `CLIP` (open_clip_model.safetensors): open_clip's text cleaning, pads with 0.
    OpenClip,
}

/// One transformer stack.
#[derive(Clone, Debug, PartialEq)]
pub struct Tower {
    pub width: usize,
    pub layers: usize,
    pub heads: usize,
    /// Hidden size of the MLP.
    pub mlp: usize,
    pub activation: Activation,
    pub eps: f64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct TextConfig {
    pub tower: Tower,
    pub vocab: usize,
    pub context: usize,
    pub pooling: Pooling,
}

#[derive(Clone, Debug, PartialEq)]
pub struct VisionConfig {
    pub tower: Tower,
    pub image_size: usize,
    pub patch_size: usize,
}

impl VisionConfig {
    /// Reads image and patch size (defaults differ by library), checking they tile.
    fn read(keys: &Keys, tower: Tower, default_patch: usize) -> Result<Self, ClipError> {
        let config = VisionConfig {
            tower,
            image_size: keys.usize("image_size", 224)?,
            patch_size: keys.usize("patch_size", default_patch)?,
        };
        if !config.image_size.is_multiple_of(config.patch_size) {
            return Err(ClipError::config(
                keys.file,
                format!(
                    "`{}` {} is not a multiple of `{}` {}",
                    keys.name("image_size"),
                    config.image_size,
                    keys.name("patch_size"),
                    config.patch_size
                ),
            ));
        }
        Ok(config)
    }

    pub fn patches(&self) -> usize {
        (self.image_size / self.patch_size).pow(2)
    }
}

/// Image normalisation and resize rule the checkpoint ships with.
#[derive(Clone, Debug, PartialEq)]
pub struct ImageConfig {
    pub size: u32,
    pub mean: [f32; 3],
    pub std: [f32; 3],
    /// open_clip's `resize_mode: "longest"` (HPS v2's ResizeMaxSize); otherwise shortest edge + crop.
    pub longest_side: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ClipConfig {
    pub layout: Layout,
    pub text: TextConfig,
    pub vision: VisionConfig,
    pub projection: usize,
    pub image: ImageConfig,
}

/// Reads keys of one JSON object, naming the file and the key path in errors.
struct Keys<'a> {
    file: &'a str,
    path: String,
    map: Map<String, Value>,
}

impl<'a> Keys<'a> {
    fn new(file: &'a str, path: &str, value: Option<&Value>) -> Result<Self, ClipError> {
        let map = match value {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(map)) => map.clone(),
            Some(_) => return Err(ClipError::config(file, format!("`{path}` is not an object"))),
        };
        Ok(Keys { file, path: path.to_string(), map })
    }

    /// `root[key]` with `root[legacy]` laid over it: configs written by transformers before
    /// 4.19 (PickScore_v1, laion's ViT-H-14) keep their real values in `*_config_dict`, which
    /// `CLIPConfig` lets override `*_config`.
    fn merged(file: &'a str, key: &str, root: &Value, legacy: &str) -> Result<Self, ClipError> {
        let mut keys = Keys::new(file, key, root.get(key))?;
        let over = Keys::new(file, legacy, root.get(legacy))?;
        keys.map.extend(over.map);
        Ok(keys)
    }

    fn name(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    fn usize(&self, key: &str, default: usize) -> Result<usize, ClipError> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(v) => match v.as_u64() {
                Some(n) if n > 0 => Ok(n as usize),
                _ => Err(ClipError::config(
                    self.file,
                    format!("`{}` must be a positive integer, found {v}", self.name(key)),
                )),
            },
        }
    }

    fn f64(&self, key: &str, default: f64) -> Result<f64, ClipError> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(v) => v.as_f64().filter(|x| x.is_finite()).ok_or_else(|| {
                ClipError::config(self.file, format!("`{}` must be a number, found {v}", self.name(key)))
            }),
        }
    }

    fn str(&self, key: &str) -> Option<&str> {
        self.map.get(key).and_then(Value::as_str)
    }

    fn bool(&self, key: &str, default: bool) -> Result<bool, ClipError> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(v) => {
                Err(ClipError::config(self.file, format!("`{}` must be true or false, found {v}", self.name(key))))
            }
        }
    }

    fn triple(&self, key: &str, default: [f32; 3]) -> Result<[f32; 3], ClipError> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(Value::Array(a)) if a.len() == 3 && a.iter().all(|x| x.as_f64().is_some()) => {
                Ok([0, 1, 2].map(|i| a[i].as_f64().unwrap_or_default() as f32))
            }
            Some(v) => {
                Err(ClipError::config(self.file, format!("`{}` must be three numbers, found {v}", self.name(key))))
            }
        }
    }

    /// Refuses a key whose value would change the architecture in a way this crate does not run.
    fn refuse_unless(&self, key: &str, allowed: impl Fn(&Value) -> bool, why: &str) -> Result<(), ClipError> {
        match self.map.get(key) {
            Some(v) if !v.is_null() && !allowed(v) => {
                Err(ClipError::config(self.file, format!("`{}` = {v} is not supported: {why}", self.name(key))))
            }
            _ => Ok(()),
        }
    }
}

fn parse_json(file: &str, bytes: &[u8]) -> Result<Value, ClipError> {
    serde_json::from_slice(bytes).map_err(|e| ClipError::config(file, format!("not valid JSON: {e}")))
}

fn hf_activation(keys: &Keys, default: Activation) -> Result<Activation, ClipError> {
    match keys.str("hidden_act") {
        None => Ok(default),
        Some("quick_gelu") => Ok(Activation::QuickGelu),
        Some("gelu") => Ok(Activation::Gelu),
        Some(other) => Err(ClipError::config(
            keys.file,
            format!("`{}` = \"{other}\" is not supported (quick_gelu or gelu)", keys.name("hidden_act")),
        )),
    }
}

/// One transformers tower config with the given defaults for absent keys.
fn hf_tower(keys: &Keys, (width, layers, heads, mlp): (usize, usize, usize, usize)) -> Result<Tower, ClipError> {
    let tower = Tower {
        width: keys.usize("hidden_size", width)?,
        layers: keys.usize("num_hidden_layers", layers)?,
        heads: keys.usize("num_attention_heads", heads)?,
        mlp: keys.usize("intermediate_size", mlp)?,
        activation: hf_activation(keys, Activation::QuickGelu)?,
        eps: keys.f64("layer_norm_eps", 1e-5)?,
    };
    check_heads(keys.file, &keys.path, &tower)?;
    Ok(tower)
}

fn check_heads(file: &str, what: &str, tower: &Tower) -> Result<(), ClipError> {
    if !tower.width.is_multiple_of(tower.heads) {
        return Err(ClipError::config(
            file,
            format!("{what}: width {} is not divisible by {} heads", tower.width, tower.heads),
        ));
    }
    Ok(())
}

impl ClipConfig {
    /// transformers' `CLIPConfig` (config.json), with `CLIPTextConfig`/`CLIPVisionConfig`'s
    /// defaults for absent keys, and optionally preprocessor_config.json.
    pub fn from_huggingface(config: &[u8], preprocessor: Option<&[u8]>) -> Result<Self, ClipError> {
        const FILE: &str = "config.json";
        let root = parse_json(FILE, config)?;
        let top = Keys::new(FILE, "", Some(&root))?;
        if let Some(kind) = top.str("model_type") {
            if kind != "clip" {
                return Err(ClipError::config(FILE, format!("model_type \"{kind}\" is not a CLIPModel")));
            }
        }
        let text = Keys::merged(FILE, "text_config", &root, "text_config_dict")?;
        let vision = Keys::merged(FILE, "vision_config", &root, "vision_config_dict")?;
        // CLIPTextConfig's and CLIPVisionConfig's defaults: (width, layers, heads, MLP).
        let text_tower = hf_tower(&text, (512, 12, 8, 2048))?;
        let vision_tower = hf_tower(&vision, (768, 12, 12, 3072))?;
        // transformers' CLIPTextTransformer: eos_token_id == 2 (configs older than 4.31) means
        // "pool at argmax(input_ids)"; otherwise the first position holding eos_token_id.
        let eos = text.usize("eos_token_id", 49407)?;
        let pooling = if eos == 2 { Pooling::Argmax } else { Pooling::FirstId(eos as u32) };
        let channels = vision.usize("num_channels", 3)?;
        if channels != 3 {
            return Err(ClipError::config(
                FILE,
                format!("vision_config.num_channels = {channels}: only RGB models are supported"),
            ));
        }
        let vision_cfg = VisionConfig::read(&vision, vision_tower, 32)?;
        let mut image =
            ImageConfig { size: vision_cfg.image_size as u32, mean: OPENAI_MEAN, std: OPENAI_STD, longest_side: false };
        if let Some(bytes) = preprocessor {
            const PRE: &str = "preprocessor_config.json";
            let root = parse_json(PRE, bytes)?;
            let pre = Keys::new(PRE, "", Some(&root))?;
            image.mean = pre.triple("image_mean", OPENAI_MEAN)?;
            image.std = pre.triple("image_std", OPENAI_STD)?;
            pre.refuse_unless("resample", |v| v.as_u64() == Some(3), "prefscope resizes with bicubic (3)")?;
            let crop = Keys::new(PRE, "crop_size", root.get("crop_size").filter(|v| v.is_object()))?;
            let crop_size = match root.get("crop_size") {
                Some(Value::Number(n)) => n.as_u64().map(|n| n as usize),
                _ => crop.map.get("height").and_then(Value::as_u64).map(|n| n as usize),
            };
            if let Some(size) = crop_size {
                if size != vision_cfg.image_size {
                    return Err(ClipError::config(
                        PRE,
                        format!("crop_size {size} differs from the model's image_size {}", vision_cfg.image_size),
                    ));
                }
            }
        }
        Ok(ClipConfig {
            layout: Layout::HuggingFace,
            text: TextConfig {
                tower: text_tower,
                vocab: text.usize("vocab_size", 49408)?,
                context: text.usize("max_position_embeddings", 77)?,
                pooling,
            },
            vision: vision_cfg,
            projection: top.usize("projection_dim", 512)?,
            image,
        })
    }

    /// open_clip's `CLIP` from open_clip_config.json (`{"model_cfg": {...}, "preprocess_cfg": {...}}`,
    /// as the Hub stores it), with open_clip's `CLIPVisionCfg`/`CLIPTextCfg` defaults.
    pub fn from_open_clip(config: &[u8]) -> Result<Self, ClipError> {
        const FILE: &str = "open_clip_config.json";
        let root = parse_json(FILE, config)?;
        let model = root.get("model_cfg").unwrap_or(&root);
        let top = Keys::new(FILE, "model_cfg", Some(model))?;
        let vision = Keys::new(FILE, "model_cfg.vision_cfg", model.get("vision_cfg"))?;
        let text = Keys::new(FILE, "model_cfg.text_cfg", model.get("text_cfg"))?;
        let pre = Keys::new(FILE, "preprocess_cfg", root.get("preprocess_cfg"))?;
        let is_false = |v: &Value| v.as_bool() == Some(false);
        let is_null = |v: &Value| v.is_null();
        vision.refuse_unless("timm_model_name", is_null, "timm vision towers are not CLIP ViTs")?;
        text.refuse_unless("hf_model_name", is_null, "Hugging Face text towers are not CLIP text transformers")?;
        for keys in [&vision, &text] {
            keys.refuse_unless("ls_init_value", is_null, "layer scale is not implemented")?;
            keys.refuse_unless("norm_kind", |v| v.as_str() == Some("layernorm"), "only LayerNorm")?;
            keys.refuse_unless("act_kind", |v| v.as_str() == Some("gelu"), "only GELU / QuickGELU")?;
        }
        vision.refuse_unless("attentional_pool", is_false, "attentional pooling is not implemented")?;
        vision.refuse_unless("no_ln_pre", is_false, "towers without ln_pre are not implemented")?;
        vision.refuse_unless("final_ln_after_pool", is_false, "only LayerNorm before pooling")?;
        vision.refuse_unless("pool_type", |v| v.as_str() == Some("tok"), "the class token is pooled")?;
        vision.refuse_unless("layers", |v| v.is_u64(), "ResNet towers (a list of layers) are not ViTs")?;
        text.refuse_unless("pool_type", |v| v.as_str() == Some("argmax"), "the text is pooled at argmax(ids)")?;
        text.refuse_unless("proj_bias", is_false, "the text projection has no bias")?;
        text.refuse_unless("embed_cls", is_false, "no CLS text token")?;
        text.refuse_unless("no_causal_mask", is_false, "the text transformer is causal")?;
        let activation = if top.bool("quick_gelu", false)? { Activation::QuickGelu } else { Activation::Gelu };
        let v_width = vision.usize("width", 768)?;
        let v_heads = v_width / vision.usize("head_width", 64)?;
        let v_mlp = (v_width as f64 * vision.f64("mlp_ratio", 4.0)?) as usize;
        let t_width = text.usize("width", 512)?;
        let t_mlp = (t_width as f64 * text.f64("mlp_ratio", 4.0)?) as usize;
        let vision_tower = Tower {
            width: v_width,
            layers: vision.usize("layers", 12)?,
            heads: v_heads.max(1),
            mlp: v_mlp,
            activation,
            eps: 1e-5,
        };
        let text_tower = Tower {
            width: t_width,
            layers: text.usize("layers", 12)?,
            heads: text.usize("heads", 8)?,
            mlp: t_mlp,
            activation,
            eps: 1e-5,
        };
        check_heads(FILE, "model_cfg.vision_cfg", &vision_tower)?;
        check_heads(FILE, "model_cfg.text_cfg", &text_tower)?;
        let vision_cfg = VisionConfig::read(&vision, vision_tower, 16)?;
        let longest_side = match pre.str("resize_mode") {
            None | Some("shortest") => false,
            Some("longest") => true,
            Some(other) => {
                return Err(ClipError::config(
                    FILE,
                    format!("preprocess_cfg.resize_mode \"{other}\" is not supported (shortest or longest)"),
                ))
            }
        };
        Ok(ClipConfig {
            layout: Layout::OpenClip,
            text: TextConfig {
                tower: text_tower,
                vocab: text.usize("vocab_size", 49408)?,
                context: text.usize("context_length", 77)?,
                pooling: Pooling::Argmax,
            },
            image: ImageConfig {
                size: vision_cfg.image_size as u32,
                mean: pre.triple("mean", OPENAI_MEAN)?,
                std: pre.triple("std", OPENAI_STD)?,
                longest_side,
            },
            vision: vision_cfg,
            projection: top.usize("embed_dim", 512)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_config_dicts_override_and_defaults_fill_in() {
        let json = br#"{"model_type": "clip", "projection_dim": 1024,
            "text_config": {"hidden_size": 512, "hidden_act": "quick_gelu"},
            "text_config_dict": {"hidden_size": 1024, "num_attention_heads": 16, "hidden_act": "gelu"},
            "vision_config_dict": {"hidden_size": 1280, "num_attention_heads": 16, "image_size": 224, "patch_size": 14}}"#;
        let config = ClipConfig::from_huggingface(json, None).unwrap();
        assert_eq!((config.text.tower.width, config.text.tower.heads), (1024, 16));
        assert_eq!(config.text.tower.activation, Activation::Gelu);
        assert_eq!((config.vision.tower.width, config.vision.patches()), (1280, 256));
        assert_eq!(config.vision.tower.activation, Activation::QuickGelu); // CLIPVisionConfig's default
        assert_eq!(config.text.pooling, Pooling::FirstId(49407));
        let bad = br#"{"vision_config": {"image_size": 224, "patch_size": 15}}"#;
        let err = ClipConfig::from_huggingface(bad, None).unwrap_err().to_string();
        assert!(err.contains("vision_config.image_size"), "{err}");
    }
}
