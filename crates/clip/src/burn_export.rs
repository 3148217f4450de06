//! The burn model written back as a transformers `CLIPModel` checkpoint: how the demo model's
//! training saves what it learned, in the layout every runner loads.

use burn::module::Param;
use burn::tensor::Tensor;

use crate::error::ClipError;
use crate::export::safetensors_f32;
use crate::model::{Clip, EncoderLayer, LayerNorm, Linear};
use crate::weights::transpose;

/// Named f32 tensors in a fixed order.
#[derive(Default)]
struct Tensors(Vec<(String, Vec<usize>, Vec<f32>)>);

async fn values<const D: usize>(tensor: Tensor<D>) -> Result<Vec<f32>, ClipError> {
    let data = tensor.into_data_async().await.map_err(|e| ClipError::Execution(format!("{e:?}")))?;
    data.convert::<f32>().try_into_vec::<f32>().map_err(|e| ClipError::Execution(format!("{e:?}")))
}

impl Tensors {
    async fn plain<const D: usize>(&mut self, name: &str, p: &Param<Tensor<D>>) -> Result<(), ClipError> {
        let shape = p.val().dims().to_vec();
        self.0.push((name.to_string(), shape, values(p.val()).await?));
        Ok(())
    }

    /// burn's `[in, out]` as torch's `[out, in]`.
    async fn matrix(&mut self, name: &str, p: &Param<Tensor<2>>) -> Result<(), ClipError> {
        let [rows, cols] = p.val().dims();
        let v = values(p.val()).await?;
        self.0.push((name.to_string(), vec![cols, rows], transpose(&v, rows, cols)));
        Ok(())
    }

    async fn linear(&mut self, prefix: &str, l: &Linear) -> Result<(), ClipError> {
        self.matrix(&format!("{prefix}.weight"), &l.weight).await?;
        if let Some(b) = &l.bias {
            self.plain(&format!("{prefix}.bias"), b).await?;
        }
        Ok(())
    }

    async fn norm(&mut self, prefix: &str, n: &LayerNorm) -> Result<(), ClipError> {
        self.plain(&format!("{prefix}.weight"), &n.gamma).await?;
        self.plain(&format!("{prefix}.bias"), &n.beta).await
    }

    async fn layers(&mut self, prefix: &str, layers: &[EncoderLayer]) -> Result<(), ClipError> {
        for (i, layer) in layers.iter().enumerate() {
            let p = format!("{prefix}.encoder.layers.{i}");
            self.norm(&format!("{p}.layer_norm1"), &layer.ln1).await?;
            // The fused [w, 3w] projection split back into q, k and v.
            let [w, three_w] = layer.attn.qkv.weight.val().dims();
            let weight = values(layer.attn.qkv.weight.val()).await?;
            let torch = transpose(&weight, w, three_w); // [3w, w]: q rows, then k, then v
            let bias = match &layer.attn.qkv.bias {
                Some(b) => values(b.val()).await?,
                None => vec![0.0; three_w],
            };
            for (k, part) in ["q_proj", "k_proj", "v_proj"].into_iter().enumerate() {
                let rows = torch[k * w * w..(k + 1) * w * w].to_vec();
                self.0.push((format!("{p}.self_attn.{part}.weight"), vec![w, w], rows));
                self.0.push((format!("{p}.self_attn.{part}.bias"), vec![w], bias[k * w..(k + 1) * w].to_vec()));
            }
            self.linear(&format!("{p}.self_attn.out_proj"), &layer.attn.out).await?;
            self.norm(&format!("{p}.layer_norm2"), &layer.ln2).await?;
            self.linear(&format!("{p}.mlp.fc1"), &layer.fc1).await?;
            self.linear(&format!("{p}.mlp.fc2"), &layer.fc2).await?;
        }
        Ok(())
    }
}

impl Clip {
    /// model.safetensors in transformers' layout, F32, with `logit_scale` as stored (a log).
    pub async fn to_hf_safetensors(&self) -> Result<Vec<u8>, ClipError> {
        let (text, vision) = (&self.text, &self.vision);
        let mut t = Tensors::default();
        t.plain("text_model.embeddings.token_embedding.weight", &text.token_embedding).await?;
        t.plain("text_model.embeddings.position_embedding.weight", &text.position_embedding).await?;
        t.layers("text_model", &text.layers).await?;
        t.norm("text_model.final_layer_norm", &text.final_layer_norm).await?;
        t.matrix("text_projection.weight", &text.projection).await?;
        // The patch matrix [3·p², w] as the convolution [w, 3, p, p].
        let [k, w] = vision.patch_embedding.val().dims();
        let p = vision.patch_size;
        let conv = transpose(&values(vision.patch_embedding.val()).await?, k, w);
        t.0.push(("vision_model.embeddings.patch_embedding.weight".into(), vec![w, 3, p, p], conv));
        t.plain("vision_model.embeddings.class_embedding", &vision.class_embedding).await?;
        t.plain("vision_model.embeddings.position_embedding.weight", &vision.position_embedding).await?;
        t.norm("vision_model.pre_layrnorm", &vision.pre_layernorm).await?;
        t.layers("vision_model", &vision.layers).await?;
        t.norm("vision_model.post_layernorm", &vision.post_layernorm).await?;
        t.matrix("visual_projection.weight", &vision.projection).await?;
        t.0.push(("logit_scale".into(), vec![], vec![self.logit_scale]));
        safetensors_f32(&t.0)
    }
}
