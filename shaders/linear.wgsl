// y = epilogue(x·W + b): the towers' matrix products with their activation or residual add
// fused. x: [rows, k] f32, W: [k, n] (weights_*.wgsl: f32 or packed f16), b: [n].
// Accumulation in f32. Parameters: linear_params.wgsl.

@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

fn apply_epilogue(v: f32, idx: u32) -> f32 {
    switch p.epilogue {
        case 1u: { return v / (1.0 + exp(-1.702 * v)); }
        case 2u: { return 0.5 * v * (1.0 + erf4(vec4<f32>(v * 0.70710678118654752)).x); }
        case 3u: { return y[idx] + v; }
        default: { return v; }
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

const TILE: u32 = 64u;
const KT: u32 = 16u;
// Staged operands, [k][row] and [k][col], so that the inner loop reads both along a row.
var<workgroup> tile_x: array<array<f32, 64>, 16>;
var<workgroup> tile_w: array<array<f32, 64>, 16>;

// 64×64 output tiles; 16×16 threads each hold a 4×4 block of results in registers; the shared
// dimension is staged through workgroup memory 16 at a time with coalesced loads (x along k,
// W along n).
@compute @workgroup_size(16, 16)
fn linear(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid3: vec3<u32>) {
    let tx = lid3.x;
    let ty = lid3.y;
    let lin = ty * 16u + tx;
    let row0 = wid.y * TILE;
    let col0 = wid.x * TILE;
    var acc: array<array<f32, 4>, 4>;
    for (var i = 0u; i < 4u; i++) {
        for (var j = 0u; j < 4u; j++) {
            acc[i][j] = 0.0;
        }
    }
    for (var k0 = 0u; k0 < p.k; k0 += KT) {
        for (var l = 0u; l < 4u; l++) {
            let idx = lin + l * 256u;
            // x: 64 rows × 16 k
            let r = idx / KT;
            let kx = idx % KT;
            var vx = 0.0;
            if (row0 + r < p.rows && k0 + kx < p.k) {
                vx = x[(row0 + r) * p.k + k0 + kx];
            }
            tile_x[kx][r] = vx;
            // W: 16 k × 64 columns
            let kw = idx / TILE;
            let c = idx % TILE;
            var vw = 0.0;
            if (k0 + kw < p.k && col0 + c < p.n) {
                vw = weight((k0 + kw) * p.n + col0 + c);
            }
            tile_w[kw][c] = vw;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < KT; kk++) {
            var xv: array<f32, 4>;
            var wv: array<f32, 4>;
            for (var i = 0u; i < 4u; i++) {
                xv[i] = tile_x[kk][ty * 4u + i];
                wv[i] = tile_w[kk][tx + 16u * i];
            }
            for (var i = 0u; i < 4u; i++) {
                for (var j = 0u; j < 4u; j++) {
                    acc[i][j] = fma(xv[i], wv[j], acc[i][j]);
                }
            }
        }
        workgroupBarrier();
    }
    for (var i = 0u; i < 4u; i++) {
        let r = row0 + ty * 4u + i;
        if (r >= p.rows) {
            continue;
        }
        for (var j = 0u; j < 4u; j++) {
            // Columns interleaved by 16: neighbouring threads store neighbouring values.
            let col = col0 + tx + 16u * j;
            if (col < p.n) {
                store(r, col, acc[i][j]);
            }
        }
    }
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
