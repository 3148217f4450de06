//! Every kernel's uniform parameter block as a `#[repr(C)]` [`Pod`] struct, field for field the
//! `Params` struct of its WGSL module, and the named values some fields take (objective kinds,
//! CPO variants, f-divergences), the same constants the WGSL declares. A test reads each shader
//! with naga and compares its `Params` layout (names, offsets, size) and constants with these,
//! so a field added on one side only fails at `cargo test`, not as wrong numbers.

use bytemuck::{Pod, Zeroable};

/// A uniform block of one WGSL module: what a dispatch binds at binding 0.
pub(crate) trait Uniform: Pod {}

macro_rules! uniform {
    ($(#[$m:meta])* $name:ident in [$($part:literal),+] { $($(#[$fm:meta])* $field:ident: $ty:ty),* $(,)? }) => {
        $(#[$m])*
        #[repr(C)]
        #[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
        pub(crate) struct $name {
            $($(#[$fm])* pub $field: $ty),*
        }

        impl Uniform for $name {}

        #[cfg(all(test, not(target_arch = "wasm32")))]
        impl crate::params::tests::Layout for $name {
            const PARTS: &'static [&'static str] = &[$($part),+];
            const FIELDS: &'static [(&'static str, usize)] =
                &[$((stringify!($field), std::mem::offset_of!($name, $field))),*];
        }
    };
}

uniform!(
    /// annotators.wgsl: the EM's per-pair terms and per-group moments.
    AnnotatorParams in ["annotators"] { pairs: u32, dim: u32, groups: u32 }
);

uniform!(
    /// attention.wgsl.
    AttentionParams in ["attention"] {
        batch: u32,
        tokens: u32,
        heads: u32,
        head_dim: u32,
        /// 1: each query sees only the keys at or before it.
        causal: u32,
        scale: f32,
    }
);

uniform!(
    /// embed.wgsl: token embeddings, im2col and the vision tokens.
    EmbedParams in ["weights_f32", "embed"] {
        /// Output elements.
        count: u32,
        width: u32,
        tokens: u32,
        /// Image side (im2col).
        size: u32,
        patch_size: u32,
    }
);

uniform!(
    /// groups.wgsl: softmax and ranks within groups.
    GroupsParams in ["groups"] { groups: u32 }
);

uniform!(
    /// layer_norm.wgsl.
    LayerNormParams in ["layer_norm"] {
        rows: u32,
        width: u32,
        /// 1: row `i` normalises row `index[i]` of `x` (pooling).
        gather: u32,
        eps: f32,
    }
);

uniform!(
    /// linear_params.wgsl, shared by every matrix-product variant.
    LinearParams in ["weights_f32", "linear_params", "tile", "linear"] {
        rows: u32,
        k: u32,
        n: u32,
        /// `prefscope_core::scoring::transformer::Epilogue::code`.
        epilogue: u32,
        has_bias: u32,
    }
);

uniform!(
    /// longalign.wgsl: the LongAlign split, its reweighting, and a manifest's rows.
    LongAlignParams in ["longalign"] {
        rows: u32,
        cols: u32,
        dim: u32,
        /// 1: a score clamps at 0 (CLIPScore's convention; `pick_rows`).
        clamp: u32,
        scale: f32,
        /// The irrelevant part's weight of the reweighted score.
        weight: f32,
    }
);

uniform!(
    /// preference.wgsl: every objective's per-pair values, ranking accuracy, Diffusion-DPO and
    /// MaPO.
    PreferenceParams in ["preference"] {
        n: u32,
        /// One of [`kind`].
        kind: u32,
        n_losses: u32,
        /// One of [`fdiv`].
        fdiv: u32,
        beta: f32,
        /// Label smoothing.
        eps: f32,
        /// The α-divergence's α.
        alpha: f32,
        /// DiscoPOP's τ.
        tau: f32,
        /// The batch's NLL term (SFT, CPO's α·NLL, ORPO), KTO's KL, or BCO's δ.
        batch_constant: f32,
        /// SimPO's γ or KTO's desirable weight.
        gamma_or_desirable: f32,
        /// KTO's undesirable weight.
        undesirable: f32,
        /// One of [`cpo_loss`] for [`kind::CPO`].
        sub: u32,
        /// Up to 16 `DPOTrainer` loss types, by their index in `LossType::ALL`.
        losses: [[u32; 4]; 4],
        weights: [[f32; 4]; 4],
        /// MaPO's T, which multiplies the odds margin.
        mapo_timesteps: f32,
        /// MaPO's s, which scales the errors inside the odds.
        mapo_s: f32,
        _pad: [u32; 2],
    }
);

uniform!(
    /// preprocess.wgsl: one image's resize, crop or pad and normalisation.
    PreprocessParams in ["preprocess"] {
        in_w: u32,
        in_h: u32,
        /// The resized size.
        rw: u32,
        rh: u32,
        /// Taps per output pixel of each pass.
        kx: u32,
        ky: u32,
        /// The output size.
        ow: u32,
        oh: u32,
        /// Where the crop (positive) or the padding (negative) starts.
        off_x: i32,
        off_y: i32,
        /// Where this image's planes start in the batch's pixel buffer.
        base: u32,
        _pad: u32,
        mean: [f32; 4],
        stdev: [f32; 4],
    }
);

uniform!(
    /// reduce.wgsl: column sums of `rows × stride` values.
    ReduceParams in ["reduce"] { rows: u32, stride: u32 }
);

uniform!(
    /// similarity.wgsl: L2 normalisation and the tiled product with its score map.
    SimilarityParams in ["tile", "similarity"] {
        rows_a: u32,
        rows_b: u32,
        dim: u32,
        /// 1: `max(dot, 0)` before the scale.
        clamp: u32,
        scale: f32,
    }
);

uniform!(
    /// sort.wgsl: AOT's bitonic sort (`j`, `k` the step of the network).
    SortParams in ["sort"] { n: u32, j: u32, k: u32 }
);

/// Parameters of the kernels only the tests and the benchmark run (the `testing` feature).
#[cfg(feature = "testing")]
mod testing {
    use super::Uniform;
    use bytemuck::{Pod, Zeroable};

    uniform!(
        /// calibrate.wgsl: the benchmark's arithmetic and bandwidth probes.
        CalibrateParams in ["calibrate"] { n: u32, iterations: u32 }
    );

    uniform!(
        /// histogram.wgsl.
        HistogramParams in ["histogram"] {
            n: u32,
            bins: u32,
            /// The f32 guess of a value's bin is `(v − lo) · norm`.
            lo: f32,
            norm: f32,
        }
    );

    uniform!(
        /// tokens.wgsl: per-token rewards and segmented sums.
        TokensParams in ["tokens"] {
            segments: u32,
            beta: f32,
            /// 1: rewards from policy and reference; 0: plain sums of the policy's values.
            rewards: u32,
        }
    );
}
#[cfg(feature = "testing")]
pub(crate) use testing::{CalibrateParams, HistogramParams, TokensParams};

/// The objective families of `PreferenceParams::kind` (`KIND_*` in preference.wgsl).
pub(crate) mod kind {
    /// `DPOTrainer`'s loss types, combined with weights.
    pub const PAIRWISE: u32 = 0;
    pub const CPO: u32 = 1;
    pub const ORPO: u32 = 2;
    pub const KTO: u32 = 3;
    pub const BCO: u32 = 4;
    pub const DIFFUSION_DPO: u32 = 5;
    pub const MAPO: u32 = 6;
}

/// CPO's loss variants (`CPO_*` in preference.wgsl).
pub(crate) mod cpo_loss {
    pub const SIGMOID: u32 = 0;
    pub const HINGE: u32 = 1;
    pub const IPO: u32 = 2;
    pub const SIMPO: u32 = 3;
}

/// The f-divergence of the log-ratios (`FDIV_*` in preference.wgsl).
pub(crate) mod fdiv {
    pub const REVERSE_KL: u32 = 0;
    pub const FORWARD_KL: u32 = 1;
    pub const JS: u32 = 2;
    pub const ALPHA: u32 = 3;
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use prefscope_core::scoring::transformer::Epilogue;

    /// Where a [`Uniform`] comes from: its module's files (`shaders/<part>.wgsl` after
    /// `common.wgsl`) and each field's name and byte offset.
    pub(super) trait Layout: Uniform {
        const PARTS: &'static [&'static str];
        const FIELDS: &'static [(&'static str, usize)];
    }

    /// A module as the kernels compile it: common.wgsl, then its parts.
    fn module(parts: &[&str]) -> naga::Module {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shaders/");
        let mut source = std::fs::read_to_string(format!("{dir}common.wgsl")).expect("common.wgsl");
        for part in parts {
            source += &std::fs::read_to_string(format!("{dir}{part}.wgsl")).expect(part);
        }
        naga::front::wgsl::parse_str(&source).unwrap_or_else(|e| panic!("{parts:?}: {}", e.emit_to_string(&source)))
    }

    fn check<T: Layout>() {
        let name = std::any::type_name::<T>();
        let module = module(T::PARTS);
        let (members, span) = module
            .types
            .iter()
            .find_map(|(_, ty)| match (&ty.name, &ty.inner) {
                (Some(n), naga::TypeInner::Struct { members, span }) if n == "Params" => Some((members, *span)),
                _ => None,
            })
            .unwrap_or_else(|| panic!("{name}: no `Params` struct in {:?}", T::PARTS));
        let wgsl: Vec<(&str, usize)> =
            members.iter().map(|m| (m.name.as_deref().unwrap_or("?"), m.offset as usize)).collect();
        let rust: Vec<(&str, usize)> =
            T::FIELDS.iter().filter(|(n, _)| !n.starts_with('_')).map(|&(n, o)| (n, o)).collect();
        assert_eq!(wgsl.iter().filter(|(n, _)| !n.starts_with("pad")).copied().collect::<Vec<_>>(), rust, "{name}");
        assert_eq!(span as usize, std::mem::size_of::<T>(), "{name}: size");
    }

    /// The value of the WGSL `const NAME: u32` in the module of `parts`.
    fn constant(parts: &[&str], name: &str) -> u32 {
        let module = module(parts);
        let (_, c) = module
            .constants
            .iter()
            .find(|(_, c)| c.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("no const {name} in {parts:?}"));
        match module.global_expressions[c.init] {
            naga::Expression::Literal(naga::Literal::U32(v)) => v,
            ref other => panic!("const {name} is {other:?}, not a u32 literal"),
        }
    }

    #[test]
    fn every_params_struct_matches_its_shader() {
        check::<AnnotatorParams>();
        check::<AttentionParams>();
        #[cfg(feature = "testing")]
        check::<CalibrateParams>();
        check::<EmbedParams>();
        check::<GroupsParams>();
        #[cfg(feature = "testing")]
        check::<HistogramParams>();
        check::<LayerNormParams>();
        check::<LinearParams>();
        check::<LongAlignParams>();
        check::<PreferenceParams>();
        check::<PreprocessParams>();
        check::<ReduceParams>();
        check::<SimilarityParams>();
        check::<SortParams>();
        #[cfg(feature = "testing")]
        check::<TokensParams>();
    }

    #[test]
    fn named_values_match_the_shaders_constants() {
        let preference = ["preference"];
        for (name, value) in [
            ("KIND_PAIRWISE", kind::PAIRWISE),
            ("KIND_CPO", kind::CPO),
            ("KIND_ORPO", kind::ORPO),
            ("KIND_KTO", kind::KTO),
            ("KIND_BCO", kind::BCO),
            ("KIND_DIFFUSION_DPO", kind::DIFFUSION_DPO),
            ("KIND_MAPO", kind::MAPO),
            ("CPO_SIGMOID", cpo_loss::SIGMOID),
            ("CPO_HINGE", cpo_loss::HINGE),
            ("CPO_IPO", cpo_loss::IPO),
            ("CPO_SIMPO", cpo_loss::SIMPO),
            ("FDIV_REVERSE_KL", fdiv::REVERSE_KL),
            ("FDIV_FORWARD_KL", fdiv::FORWARD_KL),
            ("FDIV_JS", fdiv::JS),
            ("FDIV_ALPHA", fdiv::ALPHA),
        ] {
            assert_eq!(constant(&preference, name), value, "{name}");
        }
        let linear = ["weights_f32", "linear_params", "tile", "linear"];
        for (name, epilogue) in [
            ("EPILOGUE_NONE", Epilogue::None),
            ("EPILOGUE_QUICK_GELU", Epilogue::QuickGelu),
            ("EPILOGUE_GELU", Epilogue::Gelu),
            ("EPILOGUE_RESIDUAL", Epilogue::Residual),
        ] {
            assert_eq!(constant(&linear, name), epilogue.code(), "{name}");
        }
    }
}
