// The towers' inputs: token + position embeddings (text); patches as rows (im2col) for the
// patch-embedding matrix product, then the class token and position embeddings (vision).

struct Params {
    // Output elements.
    count: u32,
    width: u32,
    tokens: u32,
    size: u32,
    patch_size: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> ids: array<u32>;
// binding 2: the token table (weights_*.wgsl)
@group(0) @binding(3) var<storage, read> positions: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<storage, read> pixels: array<f32>;
@group(0) @binding(6) var<storage, read> class_embedding: array<f32>;
@group(0) @binding(7) var<storage, read> patches: array<f32>;

fn element_index(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return group_index(wid, nwg) * WG + lid;
}

// out[t, c] = table[ids[t], c] + positions[t mod tokens, c]
@compute @workgroup_size(256)
fn embed_tokens(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
    let idx = element_index(wid, nwg, lid);
    if (idx >= p.count) {
        return;
    }
    let t = idx / p.width;
    let c = idx % p.width;
    out[idx] = weight(ids[t] * p.width + c) + positions[(t % p.tokens) * p.width + c];
}

// pixels [batch, 3, size, size] → rows [batch·grid², 3·patch²], channel-major in a patch.
@compute @workgroup_size(256)
fn im2col(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
    let idx = element_index(wid, nwg, lid);
    if (idx >= p.count) {
        return;
    }
    let area = p.patch_size * p.patch_size;
    let cols = 3u * area;
    let grid = p.size / p.patch_size;
    let row = idx / cols;
    let col = idx % cols;
    let b = row / (grid * grid);
    let g = row % (grid * grid);
    let c = col / area;
    let py = (col % area) / p.patch_size;
    let px = col % p.patch_size;
    let y = (g / grid) * p.patch_size + py;
    let x = (g % grid) * p.patch_size + px;
    out[idx] = pixels[((b * 3u + c) * p.size + y) * p.size + x];
}

// out[b, t] = (t == 0 ? class : patches[b, t − 1]) + positions[t]
@compute @workgroup_size(256)
fn vision_tokens(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) lid: u32) {
    let idx = element_index(wid, nwg, lid);
    if (idx >= p.count) {
        return;
    }
    let c = idx % p.width;
    let t = (idx / p.width) % p.tokens;
    let b = idx / (p.width * p.tokens);
    var v = class_embedding[c];
    if (t > 0u) {
        v = patches[(b * (p.tokens - 1u) + t - 1u) * p.width + c];
    }
    out[idx] = v + positions[t * p.width + c];
}
