//! `prefscope convert --hps`: a PyTorch checkpoint of an open_clip model (HPS v2 and v2.1
//! release theirs as `torch.save({"state_dict": …})` of a fine-tuned ViT-H-14) checked against
//! the architecture of the open_clip directory it was fine-tuned from, then written as that
//! directory's `open_clip_model.safetensors`, which every loader reads.
//!
//! Tensors keep their stored dtype (f32, or f16 / bf16 for half-precision checkpoints such as
//! HPS's `_compressed` files); f64 is narrowed to f32. Names must be exactly open_clip's for the
//! config (DataParallel's `module.` prefix is removed first, see [`crate::torch`]), with the
//! shapes the config implies and finite values: a missing, unexpected or misshapen tensor is
//! an error naming the checkpoint and the tensor, before anything is written.

use std::collections::HashMap;
use std::path::Path;

use safetensors::Dtype;

use crate::config::{ClipConfig, Layout, Tower};
use crate::error::ClipError;
use crate::torch::{read_state_dict, StateDict};

/// Every tensor of an open_clip `CLIP` state dict with `config`'s architecture (what
/// `model.state_dict()` holds), in open_clip's order: what the loader reads, plus `logit_scale`.
pub fn open_clip_shapes(config: &ClipConfig) -> Vec<(String, Vec<usize>)> {
    let mut out: Vec<(String, Vec<usize>)> = Vec::new();
    let (t, v, p) = (&config.text, &config.vision, config.projection);
    let (tw, vw, ps) = (t.tower.width, v.tower.width, v.patch_size);
    let layers = |out: &mut Vec<(String, Vec<usize>)>, prefix: &str, tower: &Tower| {
        let (w, m) = (tower.width, tower.mlp);
        for i in 0..tower.layers {
            let l = format!("{prefix}transformer.resblocks.{i}");
            let mut push = |name: &str, shape: &[usize]| out.push((format!("{l}.{name}"), shape.to_vec()));
            push("ln_1.weight", &[w]);
            push("ln_1.bias", &[w]);
            push("attn.in_proj_weight", &[3 * w, w]);
            push("attn.in_proj_bias", &[3 * w]);
            push("attn.out_proj.weight", &[w, w]);
            push("attn.out_proj.bias", &[w]);
            push("ln_2.weight", &[w]);
            push("ln_2.bias", &[w]);
            push("mlp.c_fc.weight", &[m, w]);
            push("mlp.c_fc.bias", &[m]);
            push("mlp.c_proj.weight", &[w, m]);
            push("mlp.c_proj.bias", &[w]);
        }
    };
    let push = |out: &mut Vec<(String, Vec<usize>)>, name: &str, shape: &[usize]| {
        out.push((name.to_string(), shape.to_vec()));
    };
    push(&mut out, "positional_embedding", &[t.context, tw]);
    push(&mut out, "text_projection", &[tw, p]);
    push(&mut out, "logit_scale", &[]);
    push(&mut out, "visual.class_embedding", &[vw]);
    push(&mut out, "visual.positional_embedding", &[v.patches() + 1, vw]);
    push(&mut out, "visual.proj", &[vw, p]);
    push(&mut out, "visual.conv1.weight", &[vw, 3, ps, ps]);
    push(&mut out, "visual.ln_pre.weight", &[vw]);
    push(&mut out, "visual.ln_pre.bias", &[vw]);
    layers(&mut out, "visual.", &v.tower);
    push(&mut out, "visual.ln_post.weight", &[vw]);
    push(&mut out, "visual.ln_post.bias", &[vw]);
    layers(&mut out, "", &t.tower);
    push(&mut out, "token_embedding.weight", &[t.vocab, tw]);
    push(&mut out, "ln_final.weight", &[tw]);
    push(&mut out, "ln_final.bias", &[tw]);
    out
}

/// Reads the state dict of the `.pt` checkpoint `bytes` (named `file` in errors) and checks it
/// against `config` (an open_clip config): every tensor it needs, nothing else, each with its
/// shape, every value finite. Nothing is written.
pub fn read_checked<'a>(file: &str, bytes: &'a [u8], config: &ClipConfig) -> Result<StateDict<'a>, ClipError> {
    if config.layout != Layout::OpenClip {
        return Err(ClipError::Input(
            "convert writes open_clip weights: the base model needs an open_clip_config.json".into(),
        ));
    }
    let state = read_state_dict(file, bytes)?;
    let shapes = open_clip_shapes(config);
    let expected: HashMap<&str, &[usize]> = shapes.iter().map(|(n, s)| (n.as_str(), s.as_slice())).collect();
    // Errors name tensors as the file stores them (with a stripped prefix).
    let stored = |name: &str| format!("{}{name}", state.stripped_prefix.unwrap_or(""));
    for (name, tensor) in &state.tensors {
        match expected.get(name.as_str()) {
            None => return Err(ClipError::UnexpectedTensor { file: file.to_string(), tensor: stored(name) }),
            Some(shape) if *shape != tensor.shape.as_slice() => {
                return Err(ClipError::Shape {
                    file: file.to_string(),
                    tensor: stored(name),
                    expected: shape.to_vec(),
                    found: tensor.shape.clone(),
                })
            }
            Some(_) => {}
        }
        let finite = |v: f32| v.is_finite();
        let bad = match tensor.dtype {
            Dtype::F32 => {
                tensor.data.chunks_exact(4).position(|b| !finite(f32::from_le_bytes([b[0], b[1], b[2], b[3]])))
            }
            Dtype::F16 => tensor.data.chunks_exact(2).position(|b| !half::f16::from_le_bytes([b[0], b[1]]).is_finite()),
            _ => tensor.data.chunks_exact(2).position(|b| !half::bf16::from_le_bytes([b[0], b[1]]).is_finite()),
        };
        if let Some(index) = bad {
            return Err(ClipError::NonFinite { file: file.to_string(), tensor: stored(name), index });
        }
    }
    let present: HashMap<&str, ()> = state.tensors.iter().map(|(n, _)| (n.as_str(), ())).collect();
    if let Some((name, _)) = shapes.iter().find(|(n, _)| !present.contains_key(n.as_str())) {
        return Err(ClipError::MissingTensor { file: file.to_string(), tensor: stored(name) });
    }
    Ok(state)
}

/// The dtype the converted weights are stored in: `f32`, `f16`, `bf16`, or `mixed`.
pub fn stored_dtype(state: &StateDict) -> &'static str {
    let name = |d: Dtype| match d {
        Dtype::F32 => "f32",
        Dtype::F16 => "f16",
        _ => "bf16",
    };
    let mut dtypes = state.tensors.iter().map(|(_, t)| name(t.dtype));
    let first = dtypes.next().unwrap_or("f32");
    if dtypes.all(|d| d == first) {
        first
    } else {
        "mixed"
    }
}

/// Writes a checked state dict as a safetensors file at `path`, tensor by tensor.
pub fn write_safetensors(state: &StateDict, path: &Path) -> Result<(), ClipError> {
    safetensors::serialize_to_file(state.tensors.iter().map(|(name, t)| (name.as_str(), t)), None, path)
        .map_err(|e| ClipError::File { file: path.display().to_string(), detail: format!("writing safetensors: {e}") })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::weights::Checkpoint;

    /// The names and shapes match what open_clip saved for the fixtures (tests/fixtures/clip,
    /// written by open_clip's own `state_dict()`).
    #[test]
    fn shapes_are_open_clips_state_dict() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/clip");
        for name in ["openclip-gelu-bf16", "openclip-quickgelu-f32"] {
            let config =
                ClipConfig::from_open_clip(&std::fs::read(root.join(name).join("open_clip_config.json")).unwrap())
                    .unwrap();
            let bytes = std::fs::read(root.join(name).join("open_clip_model.safetensors")).unwrap();
            let ckpt = Checkpoint::parse(name, &bytes).unwrap();
            let mut stored: Vec<(String, Vec<usize>)> = ckpt
                .names()
                .into_iter()
                .map(|n| (n.to_string(), crate::weights::ready(ckpt.raw(n)).unwrap().1))
                .collect();
            let mut derived = open_clip_shapes(&config);
            stored.sort();
            derived.sort();
            assert_eq!(derived, stored, "{name}");
        }
    }
}
