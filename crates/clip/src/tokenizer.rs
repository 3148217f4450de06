//! CLIP's BPE from a tokenizer.json, through Hugging Face's `tokenizers` crate (its pure-Rust
//! regex engine, so the same code runs in the browser).
//!
//! Ids are `[start] + BPE(text) + [end]`; past the context the text is cut and the last kept
//! token becomes end-of-text (what both CLIPTokenizer with `truncation=True` and
//! open_clip.tokenize produce). The two libraries differ before BPE, and prefscope follows the
//! checkpoint's: [`Convention::HuggingFace`] recognises the special tokens written in the text
//! and pads with end-of-text; [`Convention::OpenClip`] cleans the text first
//! ([`crate::clean::open_clip_clean`]), treats `<|endoftext|>` in the text as ordinary
//! characters, and pads with 0.

use serde_json::Value;

use crate::config::Layout;
use crate::error::ClipError;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Convention {
    HuggingFace,
    OpenClip,
}

impl From<Layout> for Convention {
    fn from(layout: Layout) -> Self {
        match layout {
            Layout::HuggingFace => Convention::HuggingFace,
            Layout::OpenClip => Convention::OpenClip,
        }
    }
}

/// open_clip's pre-tokenisation pattern: the same as CLIPTokenizer's but for its own special
/// token spellings, which never occur in cleaned text.
const OPEN_CLIP_PATTERN: &str =
    r"<start_of_text>|<end_of_text>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+";

/// One text's ids, before padding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tokens {
    pub ids: Vec<u32>,
    /// The text had more tokens than the context and was cut.
    pub truncated: bool,
}

pub struct ClipTokenizer {
    inner: tokenizers::Tokenizer,
    convention: Convention,
    start: u32,
    end: u32,
    context: usize,
}

/// The largest tokenizer.json read: parsing builds a JSON tree several times the file's size.
const MAX_TOKENIZER_BYTES: usize = 64 << 20;

impl ClipTokenizer {
    /// Reads a CLIP tokenizer.json (as CLIPTokenizer saves it) for the given convention.
    pub fn from_json(bytes: &[u8], convention: Convention, context: usize) -> Result<Self, ClipError> {
        let bad = |detail: String| ClipError::Tokenizer(format!("tokenizer.json: {detail}"));
        if bytes.len() > MAX_TOKENIZER_BYTES {
            return Err(bad(format!(
                "{} bytes, past the {} MiB a CLIP tokenizer could need (CLIP's is about 2 MiB)",
                bytes.len(),
                MAX_TOKENIZER_BYTES >> 20
            )));
        }
        let mut json: Value = serde_json::from_slice(bytes).map_err(|e| bad(format!("not valid JSON: {e}")))?;
        let vocab =
            json.pointer("/model/vocab").and_then(Value::as_object).ok_or_else(|| bad("no BPE vocabulary".into()))?;
        let id = |name: &str| {
            vocab
                .get(name)
                .and_then(Value::as_u64)
                .map(|v| v as u32)
                .ok_or_else(|| bad(format!("the vocabulary has no `{name}`: not a CLIP tokenizer")))
        };
        let (start, end) = (id("<|startoftext|>")?, id("<|endoftext|>")?);
        if convention == Convention::OpenClip {
            // No added tokens (open_clip matches no special tokens in text), no post-processor,
            // and open_clip's pre-tokenisation pattern.
            json["added_tokens"] = Value::Array(vec![]);
            json["post_processor"] = Value::Null;
            let split = json
                .pointer_mut("/pre_tokenizer/pretokenizers/0/pattern/Regex")
                .ok_or_else(|| bad("no Split pre-tokenizer: not a CLIP tokenizer".into()))?;
            *split = Value::String(OPEN_CLIP_PATTERN.into());
        }
        let text = serde_json::to_vec(&json).map_err(|e| bad(e.to_string()))?;
        let inner = tokenizers::Tokenizer::from_bytes(text).map_err(|e| bad(e.to_string()))?;
        if context < 2 {
            return Err(ClipError::Tokenizer(format!("a context of {context} tokens cannot hold start and end")));
        }
        Ok(ClipTokenizer { inner, convention, start, end, context })
    }

    pub fn context(&self) -> usize {
        self.context
    }

    pub fn convention(&self) -> Convention {
        self.convention
    }

    pub fn end_id(&self) -> u32 {
        self.end
    }

    /// The padding id of the convention: end-of-text for transformers, 0 for open_clip.
    pub fn pad_id(&self) -> u32 {
        match self.convention {
            Convention::HuggingFace => self.end,
            Convention::OpenClip => 0,
        }
    }

    /// BPE ids of the text alone, without start/end and without truncation.
    pub fn bpe(&self, text: &str) -> Result<Vec<u32>, ClipError> {
        let cleaned;
        let input = match self.convention {
            Convention::HuggingFace => text,
            Convention::OpenClip => {
                cleaned = crate::clean::open_clip_clean(text);
                &cleaned
            }
        };
        let encoding = self
            .inner
            .encode(input, false)
            .map_err(|e| ClipError::Tokenizer(format!("cannot tokenise {:?}: {e}", short(text))))?;
        Ok(encoding.get_ids().to_vec())
    }

    /// `[start] + BPE + [end]`, cut to the context with end-of-text last.
    pub fn encode(&self, text: &str) -> Result<Tokens, ClipError> {
        let body = self.bpe(text)?;
        let mut ids = Vec::with_capacity(body.len() + 2);
        ids.push(self.start);
        ids.extend(body);
        ids.push(self.end);
        let truncated = ids.len() > self.context;
        if truncated {
            ids.truncate(self.context);
            ids[self.context - 1] = self.end;
        }
        Ok(Tokens { ids, truncated })
    }

    /// `ids` padded to the context with the convention's padding id.
    pub fn padded(&self, tokens: &Tokens) -> Vec<u32> {
        let mut ids = tokens.ids.clone();
        ids.resize(self.context, self.pad_id());
        ids
    }
}

/// The first characters of a text, for error messages.
pub(crate) fn short(text: &str) -> String {
    let mut s: String = text.chars().take(60).collect();
    if s.len() < text.len() {
        s.push('…');
    }
    s
}
