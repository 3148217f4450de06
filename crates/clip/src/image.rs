//! Decoding images to RGBA8 as users' pipelines see them: EXIF orientation applied (as
//! transformers' `load_image` does with `ImageOps.exif_transpose`), grey and palette expanded,
//! 16-bit scaled to 8 bits. Alpha is kept in the buffer and ignored by preprocessing, which is
//! PIL's `convert("RGB")` (no compositing).

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageReader};

use crate::error::ClipError;

/// An RGBA8 image with the name it is reported under.
#[derive(Clone, Debug)]
pub struct Rgba {
    pub name: String,
    pub width: u32,
    pub height: u32,
    pub data: Vec<u8>,
}

impl Rgba {
    /// Decodes PNG, JPEG, WebP, GIF or BMP bytes; `name` appears in errors.
    pub fn decode(name: &str, bytes: &[u8]) -> Result<Self, ClipError> {
        let bad = |detail: String| ClipError::Image { name: name.to_string(), detail };
        let reader = ImageReader::new(Cursor::new(bytes)).with_guessed_format().map_err(|e| bad(e.to_string()))?;
        if reader.format().is_none() {
            return Err(bad("not a PNG, JPEG, WebP, GIF or BMP image".into()));
        }
        let mut decoder = reader.into_decoder().map_err(|e| bad(format!("cannot decode: {e}")))?;
        let orientation = decoder.orientation().map_err(|e| bad(format!("cannot read its orientation: {e}")))?;
        let mut image = DynamicImage::from_decoder(decoder).map_err(|e| bad(format!("cannot decode: {e}")))?;
        image.apply_orientation(orientation);
        let rgba = image.to_rgba8();
        let (width, height) = rgba.dimensions();
        if width == 0 || height == 0 {
            return Err(bad("has no pixels".into()));
        }
        Ok(Rgba { name: name.to_string(), width, height, data: rgba.into_raw() })
    }

    /// Wraps pixels decoded elsewhere (the browser's `createImageBitmap`).
    pub fn from_raw(name: &str, width: u32, height: u32, data: Vec<u8>) -> Result<Self, ClipError> {
        prefscope_core::preprocess::check_rgba(&data, width, height)
            .map_err(|e| ClipError::Image { name: name.to_string(), detail: e.to_string() })?;
        Ok(Rgba { name: name.to_string(), width, height, data })
    }

    /// Reads and decodes a file.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn open(path: &std::path::Path) -> Result<Self, ClipError> {
        let name = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|e| ClipError::Image { name: name.clone(), detail: e.to_string() })?;
        Self::decode(&name, &bytes)
    }
}
