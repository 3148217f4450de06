//! Image preprocessing on the GPU: RGBA8 in, Pillow's bicubic resize (the fixed-point taps of
//! `prefscope_core::scoring::preprocess`, so the bytes are identical), crop or pad, normalisation,
//! f32 channel planes out. Twin of `prefscope_core::scoring::preprocess::preprocess`. The towers record
//! the same kernels into their own pass ([`crate::Pass::preprocess`]), so pixels stay on the
//! device; this entry point reads them back.

use prefscope_core::scoring::preprocess::{check_rgba, Pixels, Preset};

use crate::{Gpu, GpuError};

impl Gpu {
    /// Preprocesses one image. Each image is one dispatch pair; an image whose pixels exceed
    /// a storage binding is refused with [`GpuError::TooLarge`].
    pub async fn preprocess(&self, rgba: &[u8], width: u32, height: u32, preset: &Preset) -> Result<Pixels, GpuError> {
        check_rgba(rgba, width, height).map_err(|e| GpuError::Shape(e.to_string()))?;
        let (ow, oh) = preset.plan(width, height).out;
        let values = 3 * ow as usize * oh as usize;
        self.check_fits(|| format!("the {width}×{height} image's pixels"), values as u64 * 4)?;
        let out = self.zeros("pixels", values)?;
        let mut pass = self.pass("image preprocessing")?;
        pass.preprocess(rgba, width, height, preset, &out, 0)?;
        let data = pass.finish(&[(&out, values)]).await?.remove(0);
        Ok(Pixels { width: ow, height: oh, data })
    }
}
