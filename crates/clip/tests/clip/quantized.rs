//! Checkpoints written by `prefscope quantize`: read back, they give the towers of quantizing at
//! load; broken ones get errors naming the file and tensor.

use prefscope_clip::quantize::quantize;
use prefscope_clip::weights::Checkpoint;
use prefscope_clip::{Backend, ClipError, Dtype, DtypeChoice, Encoder, ModelFiles};
use prefscope_gpu::block_on;

use crate::common::{cosine, fixture_bytes, model_files, MODELS};

/// `name`'s files with its weights rewritten in `dtype`.
pub fn quantized_files(name: &str, dtype: Dtype) -> (ModelFiles, String) {
    let files = model_files(name);
    let weights = files.weights_name().unwrap();
    let (config, _) = files.config().unwrap();
    let bytes = fixture_bytes(&format!("{name}/{weights}"));
    let ckpt = Checkpoint::parse(&weights, &bytes).unwrap();
    let summary = block_on(quantize(&config, &ckpt, dtype)).unwrap();
    assert!(summary.converted > 0 && summary.kept > 0, "{name}: {summary:?}");
    let mut out = ModelFiles::new();
    for file in files.names() {
        if file != weights {
            out.insert(file, files.read(file).unwrap().unwrap().into_owned());
        }
    }
    out.insert(&weights, summary.bytes);
    (out, weights)
}

fn embeddings(encoder: &Encoder) -> Vec<Vec<f32>> {
    let texts = ["a red square".to_string(), "two blue circles on grass".to_string()];
    block_on(encoder.embed_texts(&texts)).unwrap().into_iter().map(|t| t.vector).collect()
}

pub fn read_back_equals_quantizing_at_load() {
    for name in MODELS {
        for dtype in [Dtype::Q8, Dtype::F16] {
            let (files, _) = quantized_files(name, dtype);
            let from_file = Encoder::load(&files, Backend::Cpu).unwrap();
            assert_eq!(from_file.dtype(), dtype, "{name}: auto runs the stored dtype");
            let at_load = Encoder::load_with(&model_files(name), Backend::Cpu, DtypeChoice::Exactly(dtype)).unwrap();
            for (a, b) in embeddings(&from_file).iter().zip(embeddings(&at_load)) {
                let worst = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
                assert!(worst <= 1e-6, "{name} {dtype:?}: read back differs by {worst}");
            }
            // Explicit f32 widens the stored codes: the quantized weights' towers without
            // quantized activations, close to the original.
            let wide = Encoder::load_with(&files, Backend::Cpu, DtypeChoice::Exactly(Dtype::F32)).unwrap();
            let original =
                Encoder::load_with(&model_files(name), Backend::Cpu, DtypeChoice::Exactly(Dtype::F32)).unwrap();
            for (a, b) in embeddings(&wide).iter().zip(embeddings(&original)) {
                assert!(cosine(a, &b) > 0.999, "{name} {dtype:?} widened");
            }
        }
    }
}

/// A q8 file on the GPU kernels runs as f16 (no int8 kernels there).
pub fn q8_files_run_as_f16_on_the_gpu(gpu: prefscope_gpu::Gpu) {
    let (files, _) = quantized_files("hf-quickgelu-f32", Dtype::Q8);
    let encoder = Encoder::load(&files, Backend::Gpu(gpu)).unwrap();
    assert_eq!(encoder.dtype(), Dtype::F16);
    let cpu = Encoder::load_with(&files, Backend::Cpu, DtypeChoice::Exactly(Dtype::F32)).unwrap();
    for (a, b) in embeddings(&encoder).iter().zip(embeddings(&cpu)) {
        assert!(cosine(a, &b) > 0.9999, "f16 on the GPU against the widened codes on the CPU");
    }
}

fn load_err(files: &ModelFiles) -> ClipError {
    match Encoder::load(files, Backend::Cpu) {
        Ok(_) => panic!("a broken quantized checkpoint loaded"),
        Err(e) => e,
    }
}

/// Rewrites one tensor of a safetensors file through `edit(name, dtype, shape, bytes)`.
fn edit_tensors(bytes: &[u8], mut edit: impl FnMut(&str, &mut String, &mut Vec<usize>, &mut Vec<u8>)) -> Vec<u8> {
    let st = safetensors::SafeTensors::deserialize(bytes).unwrap();
    let (_, meta) = safetensors::SafeTensors::read_metadata(bytes).unwrap();
    let mut entries: Vec<(String, String, Vec<usize>, Vec<u8>)> = st
        .tensors()
        .into_iter()
        .map(|(n, v)| (n, format!("{:?}", v.dtype()), v.shape().to_vec(), v.data().to_vec()))
        .collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, dtype, shape, bytes) in &mut entries {
        edit(name, dtype, shape, bytes);
    }
    let borrowed: Vec<_> = entries.iter().map(|(n, d, s, b)| (n.clone(), d.as_str(), s.clone(), b.clone())).collect();
    crate::malformed::safetensors_with(&borrowed, meta.metadata().as_ref().map(|m| serde_json::json!(m)))
}

pub fn broken_quantized_files_name_the_file_and_tensor() {
    let (files, weights) = quantized_files("hf-quickgelu-f32", Dtype::Q8);
    let good = files.read(&weights).unwrap().unwrap().into_owned();
    let target = "text_model.encoder.layers.0.mlp.fc1.weight_scale";
    let with = |bytes: Vec<u8>| {
        let mut f = files_without_weights(&files, &weights);
        f.insert(&weights, bytes);
        f
    };
    // Truncated.
    let err = load_err(&with(good[..good.len() - 100].to_vec())).to_string();
    assert!(err.contains(&weights) && err.contains("truncated"), "{err}");
    // A scale of the wrong shape.
    let err = load_err(&with(edit_tensors(&good, |name, _, shape, bytes| {
        if name == target {
            shape.push(2);
            bytes.extend(bytes.clone());
        }
    })))
    .to_string();
    assert!(err.contains(&weights) && err.contains(target) && err.contains("shape"), "{err}");
    // A NaN scale.
    let err = load_err(&with(edit_tensors(&good, |name, _, _, bytes| {
        if name == target {
            bytes[4..8].copy_from_slice(&f32::NAN.to_le_bytes());
        }
    })))
    .to_string();
    assert!(err.contains(&weights) && err.contains(target) && err.contains("NaN"), "{err}");
    // No scale at all.
    let stripped = strip(&good, target);
    let err = load_err(&with(stripped)).to_string();
    assert!(
        err.contains(&weights) && err.contains(target.trim_end_matches("_scale")) && err.contains("_scale"),
        "{err}"
    );
    // An unknown dtype in the metadata.
    let relabelled = relabel(&good, "q4");
    let err = load_err(&with(relabelled)).to_string();
    assert!(err.contains(&weights) && err.contains("`q4`"), "{err}");
}

fn files_without_weights(files: &ModelFiles, weights: &str) -> ModelFiles {
    let mut out = ModelFiles::new();
    for file in files.names().into_iter().filter(|f| *f != weights) {
        out.insert(file, files.read(file).unwrap().unwrap().into_owned());
    }
    out
}

/// The file without tensor `drop`.
fn strip(bytes: &[u8], drop: &str) -> Vec<u8> {
    let st = safetensors::SafeTensors::deserialize(bytes).unwrap();
    let views: Vec<_> = st.tensors().into_iter().filter(|(n, _)| n != drop).collect();
    safetensors::serialize(views, Some([("prefscope.dtype".to_string(), "q8".to_string())].into())).unwrap()
}

/// The file with another dtype in its metadata.
fn relabel(bytes: &[u8], dtype: &str) -> Vec<u8> {
    let st = safetensors::SafeTensors::deserialize(bytes).unwrap();
    safetensors::serialize(st.tensors(), Some([("prefscope.dtype".to_string(), dtype.to_string())].into())).unwrap()
}
