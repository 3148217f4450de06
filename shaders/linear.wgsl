// y = epilogue(x·W + b): the towers' matrix products with their activation or residual add
// fused. x: [rows, k] f32, W: [k, n] (weights_*.wgsl: f32 or packed f16), b: [n].
// Accumulation in f32. Parameters: linear_params.wgsl.

@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

fn apply_epilogue(v: f32, idx: u32) -> f32 {
    switch p.epilogue {
        case EPILOGUE_QUICK_GELU: { return v / (1.0 + exp(-1.702 * v)); }
        case EPILOGUE_GELU: { return 0.5 * v * (1.0 + erf4(vec4<f32>(v * 0.70710678118654752)).x); }
        case EPILOGUE_RESIDUAL: { return y[idx] + v; }
        default: { return v; } // EPILOGUE_NONE
    }
}

// y[r, col] = epilogue(acc + b[col]): the last step of both products.
fn store(r: u32, col: u32, acc: f32) {
    var v = acc;
    if (p.has_bias == 1u) {
        v += bias[col];
    }
    let idx = r * p.n + col;
    y[idx] = apply_epilogue(v, idx);
}

// The tiled product (tile.wgsl) over x and W.
fn tile_dims() -> vec3<u32> {
    return vec3<u32>(p.rows, p.n, p.k);
}

fn tile_a(r: u32, k: u32) -> f32 {
    return x[r * p.k + k];
}

fn tile_b(k: u32, col: u32) -> f32 {
    return weight(k * p.n + col);
}

const B_ALONG_K: bool = false;

fn tile_store(r: u32, col: u32, v: f32) {
    store(r, col, v);
}

@compute @workgroup_size(16, 16)
fn linear(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid3: vec3<u32>) {
    tiled_product(wid, lid3);
}

// The same product without workgroup memory or barriers, for software adapters (SwiftShader,
// lavapipe): they run a workgroup as a loop on a CPU core, where staging through workgroup
// memory only adds copies and every barrier is a context switch, while the operands already
// sit in the CPU's caches. 8×8 invocations each hold a 4×4 block (rows 4·ty.., columns
// tx + 8·j), a 32×32 tile per workgroup.
@compute @workgroup_size(8, 8)
fn linear_direct(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid3: vec3<u32>) {
    let row0 = wid.y * 32u + lid3.y * 4u;
    let col0 = wid.x * 32u + lid3.x;
    var acc: array<array<f32, 4>, 4>;
    for (var i = 0u; i < 4u; i++) {
        for (var j = 0u; j < 4u; j++) {
            acc[i][j] = 0.0;
        }
    }
    // Rows and columns past the edge read row/column 0 and are never stored.
    var rows: array<u32, 4>;
    var cols: array<u32, 4>;
    for (var i = 0u; i < 4u; i++) {
        rows[i] = select(0u, row0 + i, row0 + i < p.rows) * p.k;
        cols[i] = select(0u, col0 + 8u * i, col0 + 8u * i < p.n);
    }
    for (var k = 0u; k < p.k; k++) {
        var xv: array<f32, 4>;
        var wv: array<f32, 4>;
        for (var i = 0u; i < 4u; i++) {
            xv[i] = x[rows[i] + k];
            wv[i] = weight(k * p.n + cols[i]);
        }
        for (var i = 0u; i < 4u; i++) {
            for (var j = 0u; j < 4u; j++) {
                acc[i][j] = fma(xv[i], wv[j], acc[i][j]);
            }
        }
    }
    for (var i = 0u; i < 4u; i++) {
        let r = row0 + i;
        if (r >= p.rows) {
            continue;
        }
        for (var j = 0u; j < 4u; j++) {
            let col = col0 + 8u * j;
            if (col < p.n) {
                store(r, col, acc[i][j]);
            }
        }
    }
}
