//! Every GPU kernel against its CPU twin in prefscope-core, on the adapter wgpu finds (Mesa's
//! lavapipe in CI). One test binary, so that wgpu is linked once. Tolerances are stated at the
//! top of each module.

mod common;

#[cfg(feature = "burn")]
mod burn_shared;
mod device;
mod preference;
mod preprocess;
mod properties;
mod report;
mod scoring;
mod stats_tokens;
mod transformer;

mod transformer_native {
    use crate::common::gpu;
    use crate::transformer::*;
    use prefscope_gpu::block_on;

    #[test]
    fn linear_matches_core_off_the_tiles() {
        let g = gpu();
        // Widths off every tile and not multiples of 4, and multiples of 4 (the vectorised kernel).
        let sizes = [
            (1, 37, 23),
            (7, 5, 130),
            (65, 64, 1),
            (257, 19, 70),
            (66, 129, 66),
            (7, 4, 8),
            (65, 64, 36),
            (257, 12, 100),
        ];
        for (i, &(rows, k, n)) in sizes.iter().enumerate() {
            block_on(check_linear(&g, rows, k, n, i as u64));
        }
    }

    #[test]
    fn layer_norm_matches_core() {
        let g = gpu();
        for (i, &(rows, width)) in [(1, 3), (7, 37), (65, 300), (257, 8)].iter().enumerate() {
            block_on(check_layer_norm(&g, rows, width, 10 + i as u64));
        }
    }

    #[test]
    fn attention_matches_core() {
        let g = gpu();
        // Batch above 64, a ViT-H-sized sequence, heads not a multiple of 4 wide.
        for (i, &(batch, tokens, heads, dim)) in
            [(1, 1, 1, 3), (3, 7, 2, 5), (65, 5, 1, 8), (2, 257, 3, 7)].iter().enumerate()
        {
            block_on(check_attention(&g, batch, tokens, heads, dim, 20 + i as u64));
        }
    }

    #[test]
    fn embeddings_match_core() {
        let g = gpu();
        for (i, batch) in [1, 65].into_iter().enumerate() {
            block_on(check_embeddings(&g, batch, 30 + i as u64));
        }
    }

    #[test]
    fn bad_shapes_and_oversized_weights_are_refused() {
        block_on(check_refusals(&gpu()));
    }
}
