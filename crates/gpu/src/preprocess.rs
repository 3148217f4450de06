//! Image preprocessing on the GPU: RGBA8 in, Pillow's bicubic resize (the fixed-point taps of
//! `prefscope_core::preprocess`, so the bytes are identical), crop or pad, normalisation,
//! f32 channel planes out. Twin of `prefscope_core::preprocess::preprocess`.

use prefscope_core::preprocess::{bicubic_taps, check_rgba, Pixels, Preset};

use crate::kernel::{cast, groups_for, shader, Params, Shader};
use crate::{Gpu, GpuError};

const SHADER: Shader = shader!("preprocess");

impl Gpu {
    /// Preprocesses one image. Each image is one dispatch pair; an image whose pixels exceed
    /// a storage binding is refused with [`GpuError::TooLarge`].
    pub async fn preprocess(&self, rgba: &[u8], width: u32, height: u32, preset: &Preset) -> Result<Pixels, GpuError> {
        check_rgba(rgba, width, height).map_err(|e| GpuError::Shape(e.to_string()))?;
        let plan = preset.plan(width, height);
        let (rw, rh) = plan.resized;
        let (ow, oh) = plan.out;
        let temp_bytes = height as u64 * rw as u64 * 4;
        let out_bytes = 3 * ow as u64 * oh as u64 * 4;
        for (what, bytes) in [("image", rgba.len() as u64), ("resized rows", temp_bytes), ("pixels", out_bytes)] {
            self.check_fits(|| format!("the {width}×{height} image's {what}"), bytes)?;
        }
        let tx = bicubic_taps(width, rw);
        let ty = bicubic_taps(height, rh);
        let scope = self.scope("image preprocessing")?;
        let src = self.upload("rgba", rgba);
        let bx = self.upload("bounds x", &tx.bounds);
        let wx = self.upload("weights x", &tx.weights);
        let by = self.upload("bounds y", &ty.bounds);
        let wy = self.upload("weights y", &ty.weights);
        let temp = self.scratch("resized rows", temp_bytes);
        let out = self.scratch("pixels", out_bytes);
        let mut params = Params::default()
            .u(width)
            .u(height)
            .u(rw)
            .u(rh)
            .u(tx.ksize as u32)
            .u(ty.ksize as u32)
            .u(ow)
            .u(oh)
            .u(plan.offset.0 as i32 as u32)
            .u(plan.offset.1 as i32 as u32)
            .u(0)
            .u(0);
        for v in preset.mean.iter().chain([&0.0]).chain(&preset.std).chain([&1.0]) {
            params = params.f(*v);
        }
        let mut enc = self.encoder();
        let h = [(1, &src), (2, &bx), (3, &wx), (4, &temp)];
        self.dispatch_at(&mut enc, &SHADER, "horizontal", &params, &h, groups_for(height as u64 * rw as u64));
        let v = [(4, &temp), (5, &by), (6, &wy), (7, &out)];
        self.dispatch_at(&mut enc, &SHADER, "vertical", &params, &v, groups_for(ow as u64 * oh as u64));
        let bytes = self.finish(scope, enc, &[(&out, out_bytes)]).await?;
        Ok(Pixels { width: ow, height: oh, data: cast(&bytes[0]) })
    }
}
