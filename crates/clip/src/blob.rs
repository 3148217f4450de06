//! A browser `Blob` (a fetched file kept in the browser's blob store, a `File` the user
//! dropped) as a checkpoint [`Source`]: each tensor's bytes are sliced out when the loader asks
//! for them, so wasm memory never holds the whole file.

use std::borrow::Cow;
use std::future::Future;

use js_sys::Uint8Array;
use wasm_bindgen::JsValue;
use wasm_bindgen_futures::JsFuture;

use crate::weights::Source;

pub struct BlobSource(pub web_sys::Blob);

fn message(e: JsValue) -> String {
    e.as_string().unwrap_or_else(|| format!("{e:?}"))
}

impl Source for BlobSource {
    fn size(&self) -> u64 {
        self.0.size() as u64
    }

    fn range(&self, start: u64, end: u64) -> impl Future<Output = Result<Cow<'_, [u8]>, String>> {
        let slice = self.0.slice_with_f64_and_f64(start as f64, end as f64);
        async move {
            let slice = slice.map_err(|e| format!("cannot slice bytes {start}..{end}: {}", message(e)))?;
            let buffer = JsFuture::from(slice.array_buffer())
                .await
                .map_err(|e| format!("cannot read bytes {start}..{end}: {}", message(e)))?;
            Ok(Cow::Owned(Uint8Array::new(&buffer).to_vec()))
        }
    }
}
