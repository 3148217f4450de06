//! Broken checkpoints and configs give errors naming the file and tensor.

use prefscope_clip::{Backend, ClipError, Encoder, ModelFiles};

use crate::common::model_files;

fn load_with(name: &str, edit: impl FnOnce(&mut ModelFiles)) -> ClipError {
    let mut files = model_files(name);
    edit(&mut files);
    match Encoder::load(&files, Backend::Cpu) {
        Ok(_) => panic!("{name}: a broken model loaded"),
        Err(e) => e,
    }
}

/// A safetensors file rebuilt from (name, dtype, shape, bytes) entries.
fn safetensors(entries: &[(String, &str, Vec<usize>, Vec<u8>)]) -> Vec<u8> {
    safetensors_with(entries, None)
}

/// [`safetensors`] with a `__metadata__` map.
pub fn safetensors_with(
    entries: &[(String, &str, Vec<usize>, Vec<u8>)],
    metadata: Option<serde_json::Value>,
) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    if let Some(m) = metadata {
        header.insert("__metadata__".into(), m);
    }
    let mut data = Vec::new();
    for (name, dtype, shape, bytes) in entries {
        let start = data.len();
        data.extend_from_slice(bytes);
        header.insert(
            name.clone(),
            serde_json::json!({"dtype": dtype, "shape": shape, "data_offsets": [start, data.len()]}),
        );
    }
    let header = serde_json::to_vec(&header).unwrap();
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend(header);
    out.extend(data);
    out
}

fn entries(files: &ModelFiles) -> Vec<(String, &'static str, Vec<usize>, Vec<u8>)> {
    let bytes = files.read("model.safetensors").unwrap().unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut out: Vec<_> = st
        .tensors()
        .into_iter()
        .map(|(name, view)| (name, "F32", view.shape().to_vec(), view.data().to_vec()))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

const HF: &str = "hf-quickgelu-f32";

#[test]
fn truncated_and_garbled_files() {
    let e = load_with(HF, |f| {
        let bytes = f.read("model.safetensors").unwrap().unwrap();
        let cut = bytes[..bytes.len() / 2].to_vec();
        f.insert("model.safetensors", cut);
    });
    assert!(matches!(&e, ClipError::Checkpoint { file, .. } if file == "model.safetensors"), "{e}");
    let e = load_with(HF, |f| f.insert("model.safetensors", vec![1, 2, 3]));
    assert!(matches!(&e, ClipError::Checkpoint { .. }), "{e}");
    let e = load_with(HF, |f| {
        let mut bytes = 40u64.to_le_bytes().to_vec();
        bytes.extend(b"{\"a\": not json at all, really!!!!!!!!!!");
        f.insert("model.safetensors", bytes)
    });
    assert!(matches!(&e, ClipError::Checkpoint { .. }), "{e}");
    let e = load_with(HF, |f| f.insert("config.json", b"{\"text_config\": ".to_vec()));
    assert!(matches!(&e, ClipError::Config { file, .. } if file == "config.json"), "{e}");
}

#[test]
fn missing_tensor_wrong_shape_unknown_dtype() {
    let files = model_files(HF);
    let all = entries(&files);

    let without: Vec<_> = all.iter().filter(|e| !e.0.contains("layers.1.mlp.fc2.bias")).cloned().collect();
    let e = load_with(HF, |f| f.insert("model.safetensors", safetensors(&without)));
    let msg = e.to_string();
    assert!(
        matches!(e, ClipError::MissingTensor { .. }) && msg.contains("text_model.encoder.layers.1.mlp.fc2.bias"),
        "{msg}"
    );

    let mut reshaped = all.clone();
    let target = reshaped.iter_mut().find(|e| e.0 == "visual_projection.weight").unwrap();
    let [a, b] = [target.2[0], target.2[1]];
    target.2 = vec![b, a];
    let e = load_with(HF, |f| f.insert("model.safetensors", safetensors(&reshaped)));
    assert!(
        matches!(&e, ClipError::Shape { tensor, expected, found, .. } if tensor == "visual_projection.weight" && expected == &vec![a, b] && found == &vec![b, a]),
        "{e}"
    );

    let mut ints = all.clone();
    ints.iter_mut().find(|e| e.0 == "logit_scale").unwrap().1 = "I32";
    let e = load_with(HF, |f| f.insert("model.safetensors", safetensors(&ints)));
    assert!(matches!(&e, ClipError::DType { tensor, .. } if tensor == "logit_scale"), "{e}");

    let mut unknown = all.clone();
    unknown[0].1 = "F24";
    let e = load_with(HF, |f| f.insert("model.safetensors", safetensors(&unknown)));
    assert!(matches!(&e, ClipError::Checkpoint { .. }) && e.to_string().contains("F24"), "{e}");

    let mut nan = all;
    let target = nan.iter_mut().find(|e| e.0 == "text_model.final_layer_norm.weight").unwrap();
    target.3[4..8].copy_from_slice(&f32::NAN.to_le_bytes());
    let e = load_with(HF, |f| f.insert("model.safetensors", safetensors(&nan)));
    assert!(matches!(&e, ClipError::NonFinite { index: 1, .. }), "{e}");
}

#[test]
fn unsupported_configs_are_refused_by_name() {
    let e = load_with(HF, |f| {
        let mut config: serde_json::Value = serde_json::from_slice(&f.read("config.json").unwrap().unwrap()).unwrap();
        config["text_config"]["hidden_act"] = "gelu_new".into();
        f.insert("config.json", serde_json::to_vec(&config).unwrap());
    });
    assert!(e.to_string().contains("text_config.hidden_act"), "{e}");
    let e = load_with("openclip-gelu-bf16", |f| {
        let mut config: serde_json::Value =
            serde_json::from_slice(&f.read("open_clip_config.json").unwrap().unwrap()).unwrap();
        config["model_cfg"]["vision_cfg"]["ls_init_value"] = 0.1.into();
        f.insert("open_clip_config.json", serde_json::to_vec(&config).unwrap());
    });
    assert!(e.to_string().contains("model_cfg.vision_cfg.ls_init_value"), "{e}");
    let e = load_with(HF, |f| {
        let mut files = ModelFiles::new();
        files.insert("tokenizer.json", f.read("tokenizer.json").unwrap().unwrap().into_owned());
        *f = files;
    });
    assert!(e.to_string().contains("config.json"), "{e}");
}

#[test]
fn a_folder_with_both_layouts_reads_the_transformers_one() {
    let open_clip = model_files("openclip-quickgelu-f32");
    let mut both = model_files(HF);
    for name in ["open_clip_config.json", "open_clip_model.safetensors"] {
        both.insert(name, open_clip.read(name).unwrap().unwrap().into_owned());
    }
    let encoder = Encoder::load(&both, Backend::Cpu).unwrap();
    assert_eq!(encoder.config().layout, prefscope_clip::Layout::HuggingFace);
    // Without transformers' weights, the open_clip copy is the model.
    let mut files = ModelFiles::new();
    for name in ["config.json", "open_clip_config.json", "open_clip_model.safetensors", "tokenizer.json"] {
        files.insert(name, both.read(name).unwrap().unwrap().into_owned());
    }
    let encoder = Encoder::load(&files, Backend::Cpu).unwrap();
    assert_eq!(encoder.config().layout, prefscope_clip::Layout::OpenClip);
}
