// Multi-head self-attention on the fused q/k/v projection: one invocation per (image or text,
// head, query), streaming over the keys with the running maximum and sum of an online softmax
// (in f32), so no scores are stored and no workgroup barrier is needed (software adapters turn
// every barrier into a context switch). Neighbouring invocations are neighbouring queries of
// one head: they read the same key and value rows at the same time. The causal mask (text)
// stops each query at its own position.

struct Params {
    batch: u32,
    tokens: u32,
    heads: u32,
    head_dim: u32,
    causal: u32,
    scale: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
// [batch·tokens, 3·width]: q, k, v side by side, heads side by side inside each.
@group(0) @binding(1) var<storage, read> qkv: array<f32>;
// [batch·tokens, width]
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

const MAX_HEAD_DIM: u32 = 128u;

@compute @workgroup_size(64)
fn attention(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) lid: u32) {
    let item = group_index(wid, nwg) * 64u + lid;
    if (item >= p.batch * p.heads * p.tokens) {
        return;
    }
    let i = item % p.tokens;
    let h = (item / p.tokens) % p.heads;
    let b = item / (p.tokens * p.heads);
    let width = p.heads * p.head_dim;
    let stride = 3u * width;
    let first = b * p.tokens;
    let col = h * p.head_dim;
    var q: array<f32, MAX_HEAD_DIM>;
    var o: array<f32, MAX_HEAD_DIM>;
    for (var d = 0u; d < p.head_dim; d++) {
        q[d] = qkv[(first + i) * stride + col + d] * p.scale;
        o[d] = 0.0;
    }
    var keys = p.tokens;
    if (p.causal == 1u) {
        keys = i + 1u;
    }
    var m = -F32_MAX;
    var total = 0.0;
    for (var j = 0u; j < keys; j++) {
        let kb = (first + j) * stride + width + col;
        var s = 0.0;
        for (var d = 0u; d < p.head_dim; d++) {
            s = fma(q[d], qkv[kb + d], s);
        }
        let m_new = max(m, s);
        let rescale = exp(m - m_new);
        let e = exp(s - m_new);
        total = total * rescale + e;
        let vb = kb + width;
        for (var d = 0u; d < p.head_dim; d++) {
            o[d] = fma(e, qkv[vb + d], o[d] * rescale);
        }
        m = m_new;
    }
    let inv = 1.0 / total;
    for (var d = 0u; d < p.head_dim; d++) {
        out[(first + i) * width + col + d] = o[d] * inv;
    }
}
