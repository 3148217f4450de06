//! The towers' kernels against their twins in `prefscope_core::scoring::transformer`, on sizes off
//! every tile (1, 7, 65 and 257 rows; widths not divisible by 4), in f32 and with f16
//! weights. The CPU side accumulates in f64 from the same (f16-rounded) values, so the bars
//! measure the kernels' f32 rounding: 1e-5 relative plus 3e-6·√k absolute on products, 2e-5
//! on LayerNorm (unit-variance outputs), 1e-5 on attention outputs (convex combinations of
//! values of size 1). Shared with the browser suite (tests/browser.rs), which runs smaller cases.
#![allow(dead_code)]

use prefscope_core::scoring::transformer::{
    attention, embed_tokens, im2col, layer_norm, linear, vision_tokens, Epilogue,
};
use prefscope_gpu::Gpu;

use crate::common::{assert_close, Rng};

fn normals(rng: &mut Rng, n: usize, scale: f64) -> Vec<f32> {
    (0..n).map(|_| (rng.normal() * scale) as f32).collect()
}

/// The value an f16 weight holds on the device.
fn rounded(values: &[f32], half: bool) -> Vec<f32> {
    if half {
        values.iter().map(|&v| half::f16::from_f32(v).to_f32()).collect()
    } else {
        values.to_vec()
    }
}

/// `linear` for each epilogue, with and without bias, f32 and f16 weights, in the
/// workgroup-tiled kernel and the barrier-free ones (vectorised when k and n are multiples of 4).
pub async fn check_linear(g: &Gpu, rows: usize, k: usize, n: usize, seed: u64) {
    for direct in [false, true] {
        check_linear_with(&g.clone().with_direct_matmul(direct), rows, k, n, seed).await;
    }
}

async fn check_linear_with(g: &Gpu, rows: usize, k: usize, n: usize, seed: u64) {
    let mut rng = Rng::new(seed);
    let x = normals(&mut rng, rows * k, 1.0);
    let w = normals(&mut rng, k * n, 1.0 / (k as f64).sqrt());
    let b = normals(&mut rng, n, 0.5);
    let residual = normals(&mut rng, rows * n, 1.0);
    for half in [false, true] {
        let wd = g.weight("w", &w, half).unwrap();
        let w_cpu = rounded(&w, half);
        let xd = g.tensor("x", &x).unwrap();
        let bd = g.tensor("b", &b).unwrap();
        for epilogue in [Epilogue::None, Epilogue::QuickGelu, Epilogue::Gelu, Epilogue::Residual] {
            for bias in [true, false] {
                let yd = g.tensor("y", &residual).unwrap();
                let mut pass = g.pass("linear test").unwrap();
                pass.linear(&xd, rows, k, &wd, n, bias.then_some(&bd), epilogue, &yd).unwrap();
                let got = pass.finish(&[(&yd, rows * n)]).await.unwrap().remove(0);
                let mut want = residual.clone();
                linear(&x, rows, k, &w_cpu, n, bias.then_some(b.as_slice()), epilogue, &mut want);
                let what = format!(
                    "linear {rows}×{k}·{k}×{n} {epilogue:?} bias {bias} f16 weights {half} direct {}",
                    g.direct_matmul()
                );
                assert_close(&what, &got, &want, 3e-6 * (k as f64).sqrt(), 1e-5);
            }
        }
    }
}

/// LayerNorm over all rows and over gathered rows.
pub async fn check_layer_norm(g: &Gpu, rows: usize, width: usize, seed: u64) {
    let mut rng = Rng::new(seed);
    // An offset mean, as residual streams have: the two-pass variance must not lose it.
    let x: Vec<f32> = normals(&mut rng, rows * width, 3.0).iter().map(|v| v + 40.0).collect();
    let gamma = normals(&mut rng, width, 1.0);
    let beta = normals(&mut rng, width, 1.0);
    let picks: Vec<u32> = (0..rows.div_ceil(3)).map(|_| rng.below(rows as u64) as u32).collect();
    let (xd, gd, bd) =
        (g.tensor("x", &x).unwrap(), g.tensor("gamma", &gamma).unwrap(), g.tensor("beta", &beta).unwrap());
    let yd = g.zeros("y", rows * width).unwrap();
    let picked = g.zeros("picked", picks.len() * width).unwrap();
    let index = g.ids(&picks).unwrap();
    let mut pass = g.pass("layer norm test").unwrap();
    pass.layer_norm(&xd, width, rows, None, &gd, &bd, 1e-5, &yd).unwrap();
    pass.layer_norm(&xd, width, picks.len(), Some(&index), &gd, &bd, 1e-5, &picked).unwrap();
    let got = pass.finish(&[(&yd, rows * width), (&picked, picks.len() * width)]).await.unwrap();
    let what = format!("layer_norm {rows}×{width}");
    assert_close(&what, &got[0], &layer_norm(&x, width, None, &gamma, &beta, 1e-5), 2e-5, 2e-5);
    let want = layer_norm(&x, width, Some(&picks), &gamma, &beta, 1e-5);
    assert_close(&format!("{what} gathered"), &got[1], &want, 2e-5, 2e-5);
}

/// Attention with and without the causal mask.
pub async fn check_attention(g: &Gpu, batch: usize, tokens: usize, heads: usize, head_dim: usize, seed: u64) {
    let mut rng = Rng::new(seed);
    let width = heads * head_dim;
    let qkv = normals(&mut rng, batch * tokens * 3 * width, 1.0);
    let qd = g.tensor("qkv", &qkv).unwrap();
    for causal in [false, true] {
        let out = g.zeros("context", batch * tokens * width).unwrap();
        let mut pass = g.pass("attention test").unwrap();
        pass.attention(&qd, batch, tokens, heads, head_dim, causal, &out).unwrap();
        let got = pass.finish(&[(&out, batch * tokens * width)]).await.unwrap().remove(0);
        let want = attention(&qkv, batch, tokens, heads, head_dim, causal);
        let what = format!("attention batch {batch} × {tokens} tokens × {heads} heads of {head_dim}, causal {causal}");
        assert_close(&what, &got, &want, 1e-5, 1e-5);
    }
}

/// Token embeddings (f32 and f16 tables), im2col and the vision tokens: exact copies and sums.
pub async fn check_embeddings(g: &Gpu, batch: usize, seed: u64) {
    let mut rng = Rng::new(seed);
    let (vocab, width, tokens) = (50, 13, 7);
    let table = normals(&mut rng, vocab * width, 1.0);
    let positions = normals(&mut rng, 9 * width, 1.0);
    let ids: Vec<u32> = (0..batch * tokens).map(|_| rng.below(vocab as u64) as u32).collect();
    for half in [false, true] {
        let (td, pd, idd) =
            (g.weight("table", &table, half).unwrap(), g.tensor("pos", &positions).unwrap(), g.ids(&ids).unwrap());
        let out = g.zeros("x", ids.len() * width).unwrap();
        let mut pass = g.pass("embedding test").unwrap();
        pass.embed_tokens(&idd, &td, &pd, width, tokens, &out).unwrap();
        let got = pass.finish(&[(&out, ids.len() * width)]).await.unwrap().remove(0);
        let want = embed_tokens(&rounded(&table, half), &positions, width, &ids, tokens);
        assert_close(&format!("embed_tokens f16 {half}"), &got, &want, 0.0, 0.0);
    }
    // Vision: 12 px images, patch 4 → a 3×3 grid, 48 values per patch row.
    let (size, patch, vwidth) = (12, 4, 5);
    let pixels = normals(&mut rng, batch * 3 * size * size, 1.0);
    let grid = size / patch;
    let patches = normals(&mut rng, batch * grid * grid * vwidth, 1.0);
    let class = normals(&mut rng, vwidth, 1.0);
    let vpos = normals(&mut rng, (grid * grid + 1) * vwidth, 1.0);
    let (pxd, ptd, cd, vpd) = (
        g.tensor("pixels", &pixels).unwrap(),
        g.tensor("patches", &patches).unwrap(),
        g.tensor("class", &class).unwrap(),
        g.tensor("positions", &vpos).unwrap(),
    );
    let rows = g.zeros("rows", batch * grid * grid * 3 * patch * patch).unwrap();
    let tokens_out = g.zeros("tokens", batch * (grid * grid + 1) * vwidth).unwrap();
    let mut pass = g.pass("vision input test").unwrap();
    pass.im2col(&pxd, batch, size, patch, &rows).unwrap();
    pass.vision_tokens(&ptd, &cd, &vpd, batch, grid * grid + 1, vwidth, &tokens_out).unwrap();
    let got = pass.finish(&[(&rows, rows.len), (&tokens_out, tokens_out.len)]).await.unwrap();
    assert_close("im2col", &got[0], &im2col(&pixels, batch, size, patch), 0.0, 0.0);
    assert_close("vision_tokens", &got[1], &vision_tokens(&patches, &class, &vpos, batch, vwidth), 0.0, 0.0);
}

/// Wrong sizes are errors, not device faults; a weight past the binding names itself.
pub async fn check_refusals(g: &Gpu) {
    let x = g.tensor("x", &[1.0; 6]).unwrap();
    let w = g.tensor("w", &[1.0; 9]).unwrap();
    let y = g.zeros("y", 4).unwrap();
    let mut pass = g.pass("refusals").unwrap();
    let err = pass.linear(&x, 2, 3, &w, 3, None, Epilogue::None, &y).unwrap_err();
    assert!(err.to_string().contains("y holds 4 values, 6 needed"), "{err}");
    let err = pass.attention(&x, 1, 2000, 1, 1, false, &y).unwrap_err();
    assert!(err.to_string().contains("at most 1024 tokens"), "{err}");
    let err = pass.attention(&x, 1, 1, 1, 200, false, &y).unwrap_err();
    assert!(err.to_string().contains("heads of 128"), "{err}");
    let small = g.clone().with_binding_limit(1024);
    let err = small.weight("visual.proj", &[0.0; 300], false).unwrap_err();
    assert!(err.to_string().contains("tensor `visual.proj`"), "{err}");
    // The same tensor fits as f16.
    assert!(small.weight("visual.proj", &[0.0; 300], true).is_ok());
}
