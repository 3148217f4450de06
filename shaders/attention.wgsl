// Multi-head self-attention on the fused q/k/v projection, one workgroup per (image or text,
// head, query): scores q·kᵀ·scale, the causal mask for text, softmax in f32, then ·V. The
// scores of one query stay in workgroup memory (at most MAX_TOKENS keys).

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

const MAX_TOKENS: u32 = 1024u;
const MAX_HEAD_DIM: u32 = 256u;
var<workgroup> query: array<f32, MAX_HEAD_DIM>;
var<workgroup> probs: array<f32, MAX_TOKENS>;

@compute @workgroup_size(256)
fn attention(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) lid: u32) {
    let item = group_index(wid, nwg);
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
    for (var d = lid; d < p.head_dim; d += WG) {
        query[d] = qkv[(first + i) * stride + col + d] * p.scale;
    }
    workgroupBarrier();
    var keys = p.tokens;
    if (p.causal == 1u) {
        keys = i + 1u;
    }
    var m = -F32_MAX;
    for (var j = lid; j < keys; j += WG) {
        let kb = (first + j) * stride + width + col;
        var s = 0.0;
        for (var d = 0u; d < p.head_dim; d++) {
            s = fma(query[d], qkv[kb + d], s);
        }
        probs[j] = s;
        m = max(m, s);
    }
    m = workgroup_reduce(lid, m, 1u);
    var total = 0.0;
    for (var j = lid; j < keys; j += WG) {
        let e = exp(probs[j] - m);
        probs[j] = e;
        total += e;
    }
    total = workgroup_reduce(lid, total, 0u);
    let inv = 1.0 / total;
    for (var d = lid; d < p.head_dim; d += WG) {
        var o = 0.0;
        for (var j = 0u; j < keys; j++) {
            o = fma(probs[j], qkv[(first + j) * stride + 2u * width + col + d], o);
        }
        out[(first + i) * width + col + d] = o * inv;
    }
}
