//! A browser `Blob` (a fetched file kept in the browser's blob store, a `File` the user
//! dropped) as a checkpoint [`Source`]: each tensor's bytes are sliced out when the loader asks
//! for them, so wasm memory never holds the whole file. A file of at most [`READ_WHOLE`] bytes
//! is read once instead: every read of a `Blob` is a round trip through the browser's event
//! loop, and a small model has hundreds of tensors (the demo model loads in a third of the time).

use std::borrow::Cow;
use std::cell::OnceCell;

use js_sys::Uint8Array;
use wasm_bindgen::JsValue;
use wasm_bindgen_futures::JsFuture;

use crate::weights::Source;

/// Files up to this size are read in one go.
pub const READ_WHOLE: u64 = 64 << 20;

pub struct BlobSource {
    blob: web_sys::Blob,
    whole: OnceCell<Vec<u8>>,
    /// Never read the whole file (a reader that asks for few, large ranges).
    unbuffered: bool,
}

impl BlobSource {
    pub fn new(blob: web_sys::Blob) -> Self {
        Self { blob, whole: OnceCell::new(), unbuffered: false }
    }

    /// A source that reads each range from the Blob and never the whole file, however small.
    pub fn unbuffered(blob: web_sys::Blob) -> Self {
        Self { blob, whole: OnceCell::new(), unbuffered: true }
    }
}

async fn read(blob: &web_sys::Blob, start: u64, end: u64) -> Result<Vec<u8>, String> {
    let slice = blob
        .slice_with_f64_and_f64(start as f64, end as f64)
        .map_err(|e| format!("cannot slice bytes {start}..{end}: {}", message(e)))?;
    let buffer = JsFuture::from(slice.array_buffer())
        .await
        .map_err(|e| format!("cannot read bytes {start}..{end}: {}", message(e)))?;
    Ok(Uint8Array::new(&buffer).to_vec())
}

fn message(e: JsValue) -> String {
    e.as_string().unwrap_or_else(|| format!("{e:?}"))
}

impl Source for BlobSource {
    fn size(&self) -> u64 {
        self.blob.size() as u64
    }

    async fn range(&self, start: u64, end: u64) -> Result<Cow<'_, [u8]>, String> {
        let size = self.size();
        if size > READ_WHOLE || self.unbuffered {
            return read(&self.blob, start, end).await.map(Cow::Owned);
        }
        if self.whole.get().is_none() {
            let _ = self.whole.set(read(&self.blob, 0, size).await?);
        }
        let whole = self.whole.get().map_or(&[][..], Vec::as_slice);
        whole
            .get(start as usize..end as usize)
            .map(Cow::Borrowed)
            .ok_or_else(|| format!("bytes {start}..{end} are past the end of the file ({size} bytes)"))
    }
}
