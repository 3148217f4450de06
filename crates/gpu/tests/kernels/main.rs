//! Every GPU kernel against its CPU twin in prefscope-core, on the adapter wgpu finds (Mesa's
//! lavapipe in CI). One test binary, so that wgpu is linked once. Tolerances are stated at the
//! top of each module.

mod common;

mod annotators;

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

mod annotators_native {
    use crate::annotators::*;
    use crate::common::{gpu, tiny};
    use prefscope_gpu::block_on;

    #[test]
    fn annotator_kernels_match_core_off_the_tiles() {
        let g = gpu();
        // One pair of one feature; widths below, at and past a 64-wide tile (at 64 the gradient
        // row opens a tile of its own; past it, tiles above the diagonal are skipped).
        // Past two tiles (skipped tiles, lower tiles off the first row and column), and more
        // groups than one dispatch takes.
        let sizes = [(1, 1, 1), (37, 5, 3), (300, 64, 1), (130, 70, 2), (40, 150, 2), (20, 3, 70)];
        for (i, &(pairs, dim, k)) in sizes.iter().enumerate() {
            block_on(check_terms_and_moments(&g, pairs, dim, k, 40 + i as u64));
        }
    }

    #[test]
    fn annotator_kernels_chunk_pairs_and_groups() {
        // 4 pairs per chunk; Hessians of 20 features two groups to a batch.
        block_on(check_terms_and_moments(&tiny(4096), 37, 20, 3, 50));
        block_on(check_terms_and_moments(&tiny(4096), 9, 3, 5, 51));
    }

    #[test]
    fn em_on_the_gpu_matches_the_cpu() {
        block_on(check_em(&gpu(), 24, 10, 60));
        block_on(check_em(&tiny(4096), 12, 10, 61));
    }

    #[test]
    fn annotator_inputs_beyond_the_device_are_refused() {
        block_on(check_refusals(&gpu()));
    }
}
