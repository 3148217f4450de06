//! The towers written back as a transformers `CLIPModel` directory: config.json,
//! preprocessor_config.json and model.safetensors in transformers' names and orientations
//! (q, k and v split again, `[out, in]` matrices). The demo model's training saves through
//! this, so what ships is an ordinary checkpoint that transformers and [`crate::Encoder`]
//! load alike.

use safetensors::tensor::TensorView;
use safetensors::Dtype;
use serde_json::{json, Value};

use crate::config::{Activation, ClipConfig, Layout, Pooling, Tower};
use crate::error::ClipError;

/// Named f32 tensors `(name, shape, values)` as a safetensors file.
pub fn safetensors_f32(tensors: &[(String, Vec<usize>, Vec<f32>)]) -> Result<Vec<u8>, ClipError> {
    let bytes: Vec<Vec<u8>> =
        tensors.iter().map(|(_, _, v)| v.iter().flat_map(|x| x.to_le_bytes()).collect()).collect();
    let views = tensors
        .iter()
        .zip(&bytes)
        .map(|((name, shape, _), b)| {
            TensorView::new(Dtype::F32, shape.clone(), b)
                .map(|view| (name.clone(), view))
                .map_err(|e| ClipError::Input(format!("tensor `{name}`: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    safetensors::serialize(views, None).map_err(|e| ClipError::Input(format!("writing safetensors: {e}")))
}

/// Every tensor of a transformers `CLIPModel` with `config`'s architecture, in the order
/// the burn model's `to_hf_safetensors` writes them: what a fresh model must be initialised with.
pub fn hf_shapes(config: &ClipConfig) -> Vec<(String, Vec<usize>)> {
    let mut out: Vec<(String, Vec<usize>)> = Vec::new();
    let mut push = |name: String, shape: &[usize]| out.push((name, shape.to_vec()));
    let (t, v, p) = (&config.text, &config.vision, config.projection);
    let (tw, vw, ps) = (t.tower.width, v.tower.width, v.patch_size);
    push("text_model.embeddings.token_embedding.weight".into(), &[t.vocab, tw]);
    push("text_model.embeddings.position_embedding.weight".into(), &[t.context, tw]);
    let layers = |push: &mut dyn FnMut(String, &[usize]), prefix: &str, tower: &Tower| {
        let (w, m) = (tower.width, tower.mlp);
        for i in 0..tower.layers {
            let l = format!("{prefix}.encoder.layers.{i}");
            for norm in ["layer_norm1", "layer_norm2"] {
                push(format!("{l}.{norm}.weight"), &[w]);
                push(format!("{l}.{norm}.bias"), &[w]);
            }
            for part in ["q_proj", "k_proj", "v_proj", "out_proj"] {
                push(format!("{l}.self_attn.{part}.weight"), &[w, w]);
                push(format!("{l}.self_attn.{part}.bias"), &[w]);
            }
            push(format!("{l}.mlp.fc1.weight"), &[m, w]);
            push(format!("{l}.mlp.fc1.bias"), &[m]);
            push(format!("{l}.mlp.fc2.weight"), &[w, m]);
            push(format!("{l}.mlp.fc2.bias"), &[w]);
        }
    };
    layers(&mut push, "text_model", &t.tower);
    push("text_model.final_layer_norm.weight".into(), &[tw]);
    push("text_model.final_layer_norm.bias".into(), &[tw]);
    push("text_projection.weight".into(), &[p, tw]);
    push("vision_model.embeddings.patch_embedding.weight".into(), &[vw, 3, ps, ps]);
    push("vision_model.embeddings.class_embedding".into(), &[vw]);
    push("vision_model.embeddings.position_embedding.weight".into(), &[v.patches() + 1, vw]);
    push("vision_model.pre_layrnorm.weight".into(), &[vw]);
    push("vision_model.pre_layrnorm.bias".into(), &[vw]);
    layers(&mut push, "vision_model", &v.tower);
    push("vision_model.post_layernorm.weight".into(), &[vw]);
    push("vision_model.post_layernorm.bias".into(), &[vw]);
    push("visual_projection.weight".into(), &[p, vw]);
    push("logit_scale".into(), &[]);
    out
}

fn tower_json(tower: &Tower) -> Value {
    json!({
        "hidden_size": tower.width,
        "intermediate_size": tower.mlp,
        "num_attention_heads": tower.heads,
        "num_hidden_layers": tower.layers,
        "hidden_act": match tower.activation { Activation::QuickGelu => "quick_gelu", Activation::Gelu => "gelu" },
        "layer_norm_eps": tower.eps,
    })
}

impl ClipConfig {
    /// transformers' config.json for this architecture (a `HuggingFace` layout with
    /// first-end-of-text pooling: `eos_token_id` names the pooled id, `bos_token_id` the start).
    pub fn to_hf_config(&self, bos: u32) -> Result<Value, ClipError> {
        let eos = match (self.layout, self.text.pooling) {
            (Layout::HuggingFace, Pooling::FirstId(eos)) if eos != 2 => eos,
            _ => {
                return Err(ClipError::Input(
                    "only transformers checkpoints with an explicit end-of-text id export".into(),
                ))
            }
        };
        let mut text = tower_json(&self.text.tower);
        text["vocab_size"] = json!(self.text.vocab);
        text["max_position_embeddings"] = json!(self.text.context);
        text["eos_token_id"] = json!(eos);
        text["bos_token_id"] = json!(bos);
        text["pad_token_id"] = json!(eos);
        text["projection_dim"] = json!(self.projection);
        let mut vision = tower_json(&self.vision.tower);
        vision["image_size"] = json!(self.vision.image_size);
        vision["patch_size"] = json!(self.vision.patch_size);
        vision["projection_dim"] = json!(self.projection);
        Ok(json!({
            "architectures": ["CLIPModel"],
            "model_type": "clip",
            "projection_dim": self.projection,
            "logit_scale_init_value": 2.6592,
            "text_config": text,
            "vision_config": vision,
        }))
    }

    /// transformers' preprocessor_config.json (CLIPImageProcessor: shortest edge, bicubic,
    /// centre crop, this normalisation).
    pub fn to_hf_preprocessor(&self) -> Value {
        let image = &self.image;
        json!({
            "image_processor_type": "CLIPImageProcessor",
            "do_resize": true, "size": {"shortest_edge": image.size},
            "do_center_crop": true, "crop_size": {"height": image.size, "width": image.size},
            "do_rescale": true, "rescale_factor": 1.0 / 255.0,
            "do_normalize": true, "image_mean": image.mean, "image_std": image.std,
            "do_convert_rgb": true, "resample": 3,
        })
    }
}

/// openai/clip-vit-base-patch32's config.json (its legacy eos_token_id 2 included): the shape
/// benchmarks build random-weight models of.
pub const VIT_B32_CONFIG: &str = r#"{
  "model_type": "clip", "projection_dim": 512, "logit_scale_init_value": 2.6592,
  "text_config": {"hidden_size": 512, "intermediate_size": 2048, "num_attention_heads": 8,
    "num_hidden_layers": 12, "max_position_embeddings": 77, "vocab_size": 49408,
    "hidden_act": "quick_gelu", "bos_token_id": 0, "eos_token_id": 2, "pad_token_id": 1},
  "vision_config": {"hidden_size": 768, "intermediate_size": 3072, "num_attention_heads": 12,
    "num_hidden_layers": 12, "image_size": 224, "patch_size": 32, "hidden_act": "quick_gelu"}
}"#;

/// laion/CLIP-ViT-H-14-laion2B-s32B-b79K's shapes (PickScore and HPS v2 are this model), as
/// transformers' config.json; the benchmark's random ViT-H (`cargo xtask bench-web`) reads the
/// same file.
pub const VIT_H14_CONFIG: &str = include_str!("../../../tests/fixtures/clip/vit-h-14-config.json");
