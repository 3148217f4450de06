// The workgroup-tiled matrix product both products run: linear.wgsl (x·W with the towers'
// epilogues) and similarity.wgsl (a·bᵀ with a preset's score map). 64×64 output tiles; 16×16
// invocations each hold a 4×4 block of results in registers (rows 4·ty.., columns tx + 16·j, so
// neighbouring invocations store neighbouring values); the shared dimension is staged through
// workgroup memory 16 at a time, each operand loaded along its contiguous dimension.
//
// The module that includes it defines:
//   fn tile_dims() -> vec3<u32>               rows, columns and the shared dimension
//   fn tile_a(row: u32, k: u32) -> f32        the left operand (called in range only)
//   fn tile_b(k: u32, col: u32) -> f32        the right operand (called in range only)
//   const B_ALONG_K: bool                     the right operand is stored along k (bᵀ rows)
//   fn tile_store(row: u32, col: u32, v: f32) what becomes of a result (called in range only)

const TILE: u32 = 64u;
const KT: u32 = 16u;
// Staged operands, [k][row] and [k][col], so that the inner loop reads both along a row.
var<workgroup> tile_as: array<array<f32, 64>, 16>;
var<workgroup> tile_bs: array<array<f32, 64>, 16>;

fn tiled_product(wid: vec3<u32>, lid3: vec3<u32>) {
    let dims = tile_dims();
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
    for (var k0 = 0u; k0 < dims.z; k0 += KT) {
        // 256 invocations load 64×16 values of each operand: 4 each.
        for (var l = 0u; l < 4u; l++) {
            let idx = lin + l * 256u;
            let r = idx / KT;
            let ka = idx % KT;
            var va = 0.0;
            if (row0 + r < dims.x && k0 + ka < dims.z) {
                va = tile_a(row0 + r, k0 + ka);
            }
            tile_as[ka][r] = va;
            var kb = idx / TILE;
            var cb = idx % TILE;
            if (B_ALONG_K) {
                kb = idx % KT;
                cb = idx / KT;
            }
            var vb = 0.0;
            if (k0 + kb < dims.z && col0 + cb < dims.y) {
                vb = tile_b(k0 + kb, col0 + cb);
            }
            tile_bs[kb][cb] = vb;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < KT; kk++) {
            var av: array<f32, 4>;
            var bv: array<f32, 4>;
            for (var i = 0u; i < 4u; i++) {
                av[i] = tile_as[kk][ty * 4u + i];
                bv[i] = tile_bs[kk][tx + 16u * i];
            }
            for (var i = 0u; i < 4u; i++) {
                for (var j = 0u; j < 4u; j++) {
                    acc[i][j] = fma(av[i], bv[j], acc[i][j]);
                }
            }
        }
        workgroupBarrier();
    }
    for (var i = 0u; i < 4u; i++) {
        let r = row0 + ty * 4u + i;
        if (r >= dims.x) {
            continue;
        }
        for (var j = 0u; j < 4u; j++) {
            let col = col0 + tx + 16u * j;
            if (col < dims.y) {
                tile_store(r, col, acc[i][j]);
            }
        }
    }
}
