//! PyTorch checkpoints (`torch.save`'s zip archives) read without running any Python: the
//! state dict's tensors, borrowed from the file's bytes, for `prefscope convert`.
//!
//! A `.pt` file is a zip of stored (uncompressed) entries under one folder: `data.pkl`, a
//! pickle of the saved object whose tensors point, through persistent ids, at raw storages
//! `data/<key>`, plus `byteorder` and `version`. Pickles are programs: a global such as
//! `os.system` applied by REDUCE runs a command when Python unpickles the file. This reader is a
//! small stack machine over the opcodes `torch.save` writes, whose only callables are the
//! whitelisted globals it interprets itself (an `OrderedDict`, `_rebuild_tensor_v2`,
//! `_rebuild_parameter`) and the `torch.*Storage` type tags: any other global is refused where
//! it appears, so nothing is ever executed.
//!
//! Every allocation is bounded by the file: strings and byte runs by the bytes left in the
//! pickle, storages by their zip entries (checked with checked arithmetic), and a tensor's view
//! (offset, shape, strides) must lie inside its storage before a byte is copied. Contiguous
//! tensors are not copied at all; views that share a storage or start at an offset are sliced
//! from it, and non-contiguous ones gathered.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::io::Cursor;
use std::rc::Rc;

use safetensors::Dtype;

use crate::error::ClipError;

/// DataParallel's prefix on every name of a state dict saved from a wrapped model.
pub const DATA_PARALLEL_PREFIX: &str = "module.";

/// One tensor of a state dict, as safetensors stores it: little-endian, row-major.
#[derive(Debug)]
pub struct TorchTensor<'a> {
    pub dtype: Dtype,
    pub shape: Vec<usize>,
    /// Borrowed from the file when the tensor is a contiguous run of its storage.
    pub data: Cow<'a, [u8]>,
}

impl safetensors::View for &TorchTensor<'_> {
    fn dtype(&self) -> Dtype {
        self.dtype
    }

    fn shape(&self) -> &[usize] {
        &self.shape
    }

    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.data)
    }

    fn data_len(&self) -> usize {
        self.data.len()
    }
}

/// The tensors of a checkpoint's state dict.
#[derive(Debug)]
pub struct StateDict<'a> {
    /// Names (without a stripped prefix) and tensors, in the file's order.
    pub tensors: Vec<(String, TorchTensor<'a>)>,
    /// [`DATA_PARALLEL_PREFIX`] when every name carried it (and it was removed).
    pub stripped_prefix: Option<&'static str>,
    /// The saved dict's other entries (`iterations`, `optimizer`, …), parsed and not read.
    pub other_entries: Vec<String>,
    /// Float64 tensors written as float32.
    pub narrowed: usize,
}

/// Reads the state dict of a `torch.save` archive: `{"state_dict": {name: tensor}}` (what
/// HPS v2 and open_clip's training save) or the state dict itself. `file` names the file in
/// errors.
pub fn read_state_dict<'a>(file: &str, bytes: &'a [u8]) -> Result<StateDict<'a>, ClipError> {
    let archive = Archive::open(file, bytes)?;
    let pickle = archive.pickle();
    let root = Unpickler::new(&archive, pickle).run()?;
    let bad = |detail: String| ClipError::Torch { file: file.to_string(), detail };
    let Value::Dict(root) = &root else {
        return Err(bad(format!("holds `{}` where torch.save's dict of tensors belongs", root.kind())));
    };
    let entries = root.borrow();
    let key_of = |k: &Value| match k {
        Value::Str(s) => s.to_string(),
        other => format!("<{}>", other.kind()),
    };
    let found = entries.iter().find(|(k, _)| matches!(k, Value::Str(s) if &**s == "state_dict"));
    let (state, other_entries) = match found.map(|(_, v)| v) {
        Some(Value::Dict(state)) => {
            (state.clone(), entries.iter().map(|(k, _)| key_of(k)).filter(|k| k != "state_dict").collect())
        }
        Some(other) => return Err(bad(format!("its `state_dict` is `{}`, not a dict of tensors", other.kind()))),
        // The state dict saved by itself (`torch.save(model.state_dict())`).
        None if entries.iter().any(|(_, v)| matches!(v, Value::Tensor(_))) => (root.clone(), Vec::new()),
        None => {
            let keys: Vec<String> = entries.iter().map(|(k, _)| key_of(k)).collect();
            return Err(bad(format!("holds no `state_dict` and no tensors (its keys: {keys:?})")));
        }
    };
    let state = state.borrow();
    let mut seen = HashSet::new();
    let mut raw = Vec::with_capacity(state.len());
    for (key, value) in state.iter() {
        let Value::Str(name) = key else {
            return Err(bad(format!("its state dict has a `{}` key; tensor names are strings", key.kind())));
        };
        let Value::Tensor(tensor) = value else {
            return Err(bad(format!("`{name}` in the state dict is `{}`, not a tensor", value.kind())));
        };
        if !seen.insert(name.clone()) {
            return Err(bad(format!("`{name}` appears twice in the state dict")));
        }
        raw.push((name.to_string(), tensor.clone()));
    }
    let stripped_prefix = (!raw.is_empty() && raw.iter().all(|(n, _)| n.starts_with(DATA_PARALLEL_PREFIX)))
        .then_some(DATA_PARALLEL_PREFIX);
    let mut tensors = Vec::with_capacity(raw.len());
    let mut narrowed = 0;
    for (name, tensor) in raw {
        let t = archive.materialize(&name, &tensor)?;
        narrowed += usize::from(tensor.storage.kind == Kind::F64);
        let name = match stripped_prefix {
            Some(prefix) => name[prefix.len()..].to_string(),
            None => name,
        };
        tensors.push((name, t));
    }
    Ok(StateDict { tensors, stripped_prefix, other_entries, narrowed })
}

// ---------------------------------------------------------------------------------------------
// The zip archive
// ---------------------------------------------------------------------------------------------

/// The archive's stored entries, as byte ranges of the file.
struct Archive<'a> {
    file: String,
    bytes: &'a [u8],
    /// The folder every entry sits in, with its slash (`archive/`, or the file's stem).
    prefix: String,
    entries: HashMap<String, (usize, usize)>,
}

impl<'a> Archive<'a> {
    fn open(file: &str, bytes: &'a [u8]) -> Result<Self, ClipError> {
        let bad = |detail: String| ClipError::Torch { file: file.to_string(), detail };
        if !bytes.starts_with(b"PK\x03\x04") {
            return Err(bad(if bytes.first() == Some(&0x80) {
                "is a bare pickle: torch.save's legacy format (before PyTorch 1.6) is not read; \
                 re-save it with a current torch.save"
                    .into()
            } else {
                "is not a zip archive, so not a PyTorch checkpoint from torch.save".into()
            }));
        }
        let mut zip = zip::ZipArchive::new(Cursor::new(bytes))
            .map_err(|e| bad(format!("is not a readable zip archive (truncated?): {e}")))?;
        let mut entries = HashMap::new();
        for i in 0..zip.len() {
            let entry =
                zip.by_index_raw(i).map_err(|e| bad(format!("zip entry {i} is unreadable (truncated?): {e}")))?;
            let name = String::from_utf8_lossy(entry.name_raw()).into_owned();
            if entry.is_dir() {
                continue;
            }
            if entry.encrypted() {
                return Err(bad(format!("zip entry `{name}` is encrypted")));
            }
            if entry.compression() != zip::CompressionMethod::Stored || entry.size() != entry.compressed_size() {
                return Err(bad(format!(
                    "zip entry `{name}` is compressed ({}); torch.save stores its entries uncompressed",
                    entry.compression()
                )));
            }
            let start = entry.data_start().ok_or_else(|| bad(format!("zip entry `{name}` has no data offset")))?;
            let end = start.checked_add(entry.size()).filter(|&end| end <= bytes.len() as u64).ok_or_else(|| {
                bad(format!(
                    "zip entry `{name}` claims bytes {start}..{} past the file's {} bytes (truncated?)",
                    start.saturating_add(entry.size()),
                    bytes.len()
                ))
            })?;
            entries.insert(name, (start as usize, (end - start) as usize));
        }
        let pickles: Vec<&String> =
            entries.keys().filter(|n| n.ends_with("/data.pkl") && n.matches('/').count() == 1).collect();
        let prefix = match pickles[..] {
            [one] => one.trim_end_matches("data.pkl").to_string(),
            [] => return Err(bad("holds no `<archive>/data.pkl`: not a torch.save archive".into())),
            _ => return Err(bad(format!("holds several pickles ({pickles:?}): not one torch.save archive"))),
        };
        let archive = Archive { file: file.to_string(), bytes, prefix, entries };
        if let Some(order) = archive.entry("byteorder") {
            if order != b"little" {
                return Err(bad(format!(
                    "was saved on a {} machine; only little-endian checkpoints are read",
                    String::from_utf8_lossy(order)
                )));
            }
        }
        Ok(archive)
    }

    /// The bytes of `<prefix><name>`.
    fn entry(&self, name: &str) -> Option<&'a [u8]> {
        let &(start, len) = self.entries.get(&format!("{}{name}", self.prefix))?;
        Some(&self.bytes[start..start + len])
    }

    fn pickle(&self) -> &'a [u8] {
        self.entry("data.pkl").unwrap_or_default()
    }

    fn error(&self, name: &str, detail: String) -> ClipError {
        ClipError::Torch { file: self.file.clone(), detail: format!("tensor `{name}`: {detail}") }
    }

    /// A tensor's bytes after checking its view lies inside its storage.
    fn materialize(&self, name: &str, t: &Tensor) -> Result<TorchTensor<'a>, ClipError> {
        let bad = |detail: String| self.error(name, detail);
        let kind = t.storage.kind;
        let dtype = match kind {
            Kind::F32 | Kind::F64 => Dtype::F32,
            Kind::F16 => Dtype::F16,
            Kind::BF16 => Dtype::BF16,
            Kind::Other(storage) => {
                return Err(bad(format!(
                    "is stored as torch.{storage}; convert reads float32, float16, bfloat16 and float64 tensors"
                )))
            }
        };
        let to_usize = |what: &str, v: i64| usize::try_from(v).map_err(|_| bad(format!("has a negative {what} {v}")));
        let shape: Vec<usize> = t.shape.iter().map(|&d| to_usize("size", d)).collect::<Result<_, _>>()?;
        let stride: Vec<usize> = t.stride.iter().map(|&s| to_usize("stride", s)).collect::<Result<_, _>>()?;
        let offset = to_usize("storage offset", t.offset)?;
        if shape.len() != stride.len() {
            return Err(bad(format!("has shape {shape:?} but strides {stride:?}")));
        }
        let numel = shape
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .ok_or_else(|| bad(format!("has shape {shape:?}, more elements than any file holds")))?;
        let size = kind.size();
        if numel == 0 {
            return Ok(TorchTensor { dtype, shape, data: Cow::Borrowed(&[]) });
        }
        // The last element the view reaches must lie inside the storage.
        let last = shape
            .iter()
            .zip(&stride)
            .try_fold(offset, |a, (&d, &s)| (d - 1).checked_mul(s).and_then(|x| a.checked_add(x)))
            .filter(|&last| last < t.storage.numel)
            .ok_or_else(|| {
                bad(format!(
                    "its view (offset {offset}, shape {shape:?}, strides {stride:?}) reaches past its storage \
                     `data/{}` of {} elements",
                    t.storage.key, t.storage.numel
                ))
            })?;
        let storage = &self.bytes[t.storage.start..t.storage.start + t.storage.numel * size];
        let mut expected = 1usize;
        let mut contiguous = true;
        for (&d, &s) in shape.iter().zip(&stride).rev() {
            contiguous &= d == 1 || s == expected;
            expected *= d; // ≤ numel: no overflow
        }
        let data: Cow<'a, [u8]> = if contiguous {
            debug_assert_eq!(last, offset + numel - 1);
            Cow::Borrowed(&storage[offset * size..(offset + numel) * size])
        } else {
            // A gathered copy is at most as large as its storage (no expanded views).
            if numel > t.storage.numel {
                return Err(bad(format!(
                    "is a view of {numel} elements over a storage of {}: expanded tensors are not read",
                    t.storage.numel
                )));
            }
            let mut out = Vec::with_capacity(numel * size);
            let mut index = vec![0usize; shape.len()];
            for _ in 0..numel {
                let at = offset + index.iter().zip(&stride).map(|(i, s)| i * s).sum::<usize>();
                out.extend_from_slice(&storage[at * size..(at + 1) * size]);
                for axis in (0..shape.len()).rev() {
                    index[axis] += 1;
                    if index[axis] < shape[axis] {
                        break;
                    }
                    index[axis] = 0;
                }
            }
            Cow::Owned(out)
        };
        let data = if kind == Kind::F64 {
            Cow::Owned(
                data.chunks_exact(8)
                    .flat_map(|b| (f64::from_le_bytes(b.try_into().expect("8 bytes")) as f32).to_le_bytes())
                    .collect(),
            )
        } else {
            data
        };
        Ok(TorchTensor { dtype, shape, data })
    }
}

// ---------------------------------------------------------------------------------------------
// The pickle
// ---------------------------------------------------------------------------------------------

/// A storage's element type, from its `torch.*Storage` tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    F32,
    F16,
    BF16,
    F64,
    /// A storage type recognised (so optimizer states and integer buffers parse) but not read.
    Other(&'static str),
}

impl Kind {
    fn size(self) -> usize {
        match self {
            Kind::F32 => 4,
            Kind::F16 | Kind::BF16 => 2,
            Kind::F64 => 8,
            Kind::Other(name) => match name {
                "LongStorage" | "ComplexFloatStorage" => 8,
                "IntStorage" => 4,
                "ShortStorage" => 2,
                "ComplexDoubleStorage" => 16,
                _ => 1, // Char, Byte, Bool
            },
        }
    }
}

/// The globals the reader knows; everything else is refused where it appears.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Global {
    OrderedDict,
    RebuildTensor,
    RebuildParameter,
    Storage(Kind),
}

fn resolve(module: &str, name: &str) -> Option<Global> {
    Some(match (module, name) {
        ("collections", "OrderedDict") => Global::OrderedDict,
        ("torch._utils", "_rebuild_tensor_v2") => Global::RebuildTensor,
        ("torch._utils", "_rebuild_parameter") => Global::RebuildParameter,
        ("torch", "FloatStorage") => Global::Storage(Kind::F32),
        ("torch", "HalfStorage") => Global::Storage(Kind::F16),
        ("torch", "BFloat16Storage") => Global::Storage(Kind::BF16),
        ("torch", "DoubleStorage") => Global::Storage(Kind::F64),
        ("torch", other) => Global::Storage(Kind::Other(match other {
            "LongStorage" => "LongStorage",
            "IntStorage" => "IntStorage",
            "ShortStorage" => "ShortStorage",
            "CharStorage" => "CharStorage",
            "ByteStorage" => "ByteStorage",
            "BoolStorage" => "BoolStorage",
            "ComplexFloatStorage" => "ComplexFloatStorage",
            "ComplexDoubleStorage" => "ComplexDoubleStorage",
            _ => return None,
        })),
        _ => return None,
    })
}

/// A storage entry `data/<key>`: where its bytes start in the file and how many elements.
#[derive(Debug)]
struct Storage {
    kind: Kind,
    key: String,
    start: usize,
    numel: usize,
}

/// `_rebuild_tensor_v2`'s arguments, checked when the tensor is read.
#[derive(Debug)]
struct Tensor {
    storage: Rc<Storage>,
    offset: i64,
    shape: Vec<i64>,
    stride: Vec<i64>,
}

/// What the pickle builds. Containers are shared (`Rc`), as Python objects are between the
/// stack and the memo, so a memo fetch copies nothing.
#[derive(Clone, Debug)]
enum Value {
    None,
    Bool(bool),
    Int(i64),
    /// Floats and byte strings (optimizer settings, …) are parsed and never read.
    Float,
    Str(Rc<str>),
    Bytes,
    Tuple(Rc<[Value]>),
    List(Rc<RefCell<Vec<Value>>>),
    Dict(Rc<RefCell<Vec<(Value, Value)>>>),
    Global(Global),
    Storage(Rc<Storage>),
    Tensor(Rc<Tensor>),
}

impl Value {
    fn kind(&self) -> &'static str {
        match self {
            Value::None => "None",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float => "float",
            Value::Str(_) => "str",
            Value::Bytes => "bytes",
            Value::Tuple(_) => "tuple",
            Value::List(_) => "list",
            Value::Dict(_) => "dict",
            Value::Global(_) => "global",
            Value::Storage(_) => "storage",
            Value::Tensor(_) => "tensor",
        }
    }

    fn tuple(items: Vec<Value>) -> Value {
        Value::Tuple(items.into())
    }

    /// Moves the items of a container this value alone holds onto `work`.
    fn take_items(&mut self, work: &mut Vec<Value>) {
        match self {
            Value::Tuple(items) => {
                if let Some(items) = Rc::get_mut(items) {
                    work.extend(items.iter_mut().map(|v| std::mem::replace(v, Value::None)));
                }
            }
            Value::List(items) => {
                if let Some(items) = Rc::get_mut(items) {
                    work.append(items.get_mut());
                }
            }
            Value::Dict(items) => {
                if let Some(items) = Rc::get_mut(items) {
                    work.extend(items.get_mut().drain(..).flat_map(|(k, v)| [k, v]));
                }
            }
            _ => {}
        }
    }
}

/// Dropping a value frees its nested containers from a work list, not by recursion: a pickle
/// of a few megabytes can nest a million tuples, which a recursive drop would overflow the
/// stack on.
impl Drop for Value {
    fn drop(&mut self) {
        let mut work = Vec::new();
        self.take_items(&mut work);
        while let Some(mut value) = work.pop() {
            value.take_items(&mut work);
        }
    }
}

struct Unpickler<'r, 'a> {
    archive: &'r Archive<'a>,
    data: &'a [u8],
    pos: usize,
    stack: Vec<Value>,
    /// Stack heights at each open MARK.
    marks: Vec<usize>,
    memo: HashMap<u32, Value>,
}

impl<'r, 'a> Unpickler<'r, 'a> {
    fn new(archive: &'r Archive<'a>, data: &'a [u8]) -> Self {
        Unpickler { archive, data, pos: 0, stack: Vec::new(), marks: Vec::new(), memo: HashMap::new() }
    }

    /// An error naming the file and, when the stack shows one, the dict key being read.
    fn error(&self, detail: impl Into<String>) -> ClipError {
        let detail = detail.into();
        let detail = match self.pending_key() {
            Some(key) => format!("reading `{key}`, {detail}"),
            None => detail,
        };
        ClipError::Torch { file: self.archive.file.clone(), detail }
    }

    /// The innermost string on the stack that is a dict key whose value is being built: just
    /// above a dict (SETITEM), or at an even place after a mark just above one (SETITEMS).
    fn pending_key(&self) -> Option<&str> {
        let above_dict = |at: usize| matches!(self.stack[at], Value::Dict(_));
        // Marks are stack heights in increasing order: one pass down the stack and the marks.
        let mut marks = self.marks.len();
        for i in (1..self.stack.len()).rev() {
            while marks > 0 && self.marks[marks - 1] > i {
                marks -= 1;
            }
            let Value::Str(key) = &self.stack[i] else { continue };
            let mark = marks.checked_sub(1).map(|m| self.marks[m]).filter(|&m| m >= 1);
            let after_mark = mark.is_some_and(|m| (i - m).is_multiple_of(2) && above_dict(m - 1));
            if above_dict(i - 1) || after_mark {
                return Some(key);
            }
        }
        None
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], ClipError> {
        match self.pos.checked_add(n).filter(|&end| end <= self.data.len()) {
            Some(end) => {
                let bytes = &self.data[self.pos..end];
                self.pos = end;
                Ok(bytes)
            }
            None => Err(self.error(format!(
                "the pickle ends inside an operand ({n} bytes wanted at byte {} of {})",
                self.pos,
                self.data.len()
            ))),
        }
    }

    fn byte(&mut self) -> Result<u8, ClipError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, ClipError> {
        Ok(u16::from_le_bytes(self.take(2)?.try_into().expect("2 bytes")))
    }

    fn u32(&mut self) -> Result<u32, ClipError> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }

    fn u64(&mut self) -> Result<u64, ClipError> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }

    /// `n` bytes of text (`n` checked against what is left before anything is allocated).
    fn text(&mut self, n: u64) -> Result<Value, ClipError> {
        let n = usize::try_from(n).map_err(|_| self.error("a string longer than memory"))?;
        let bytes = self.take(n)?;
        let text = std::str::from_utf8(bytes).map_err(|_| self.error("a string that is not UTF-8"))?;
        Ok(Value::Str(text.into()))
    }

    fn line(&mut self) -> Result<&'a str, ClipError> {
        let rest = &self.data[self.pos..];
        let end = rest.iter().position(|&b| b == b'\n').ok_or_else(|| self.error("GLOBAL without its newline"))?;
        let text = std::str::from_utf8(&rest[..end]).map_err(|_| self.error("a GLOBAL name that is not UTF-8"))?;
        self.pos += end + 1;
        Ok(text)
    }

    fn push(&mut self, value: Value) {
        self.stack.push(value);
    }

    fn pop(&mut self) -> Result<Value, ClipError> {
        if self.marks.last().is_some_and(|&m| m >= self.stack.len()) {
            return Err(self.error("the pickle pops past a MARK"));
        }
        self.stack.pop().ok_or_else(|| self.error("the pickle pops an empty stack"))
    }

    fn top(&self) -> Result<&Value, ClipError> {
        self.stack.last().ok_or_else(|| self.error("the pickle reads an empty stack"))
    }

    /// The items above the innermost MARK, which is closed.
    fn pop_mark(&mut self) -> Result<Vec<Value>, ClipError> {
        let mark = self.marks.pop().ok_or_else(|| self.error("the pickle closes a MARK it never opened"))?;
        Ok(self.stack.split_off(mark))
    }

    fn memo_put(&mut self, index: u32) -> Result<(), ClipError> {
        let value = self.top()?.clone();
        self.memo.insert(index, value);
        Ok(())
    }

    fn memo_get(&mut self, index: u32) -> Result<(), ClipError> {
        let value = self.memo.get(&index).cloned().ok_or_else(|| self.error(format!("memo {index} is empty")))?;
        self.push(value);
        Ok(())
    }

    fn global(&mut self, module: &str, name: &str) -> Result<(), ClipError> {
        match resolve(module, name) {
            Some(global) => {
                self.push(Value::Global(global));
                Ok(())
            }
            None => Err(self.error(format!(
                "the pickle asks for {module}.{name}, which is not a tensor or plain container; \
                 refusing (nothing is executed)"
            ))),
        }
    }

    fn int(&self, value: &Value, what: &str) -> Result<i64, ClipError> {
        match value {
            Value::Int(i) => Ok(*i),
            Value::Bool(b) => Ok(i64::from(*b)),
            other => Err(self.error(format!("{what} is a {}, not an int", other.kind()))),
        }
    }

    fn ints(&self, value: &Value, what: &str) -> Result<Vec<i64>, ClipError> {
        match value {
            Value::Tuple(items) => items.iter().map(|v| self.int(v, what)).collect(),
            other => Err(self.error(format!("{what} is a {}, not a tuple of ints", other.kind()))),
        }
    }

    /// REDUCE: `callable(*args)` for the whitelisted callables only.
    fn reduce(&mut self, callable: &Value, args: &Value) -> Result<Value, ClipError> {
        let Value::Tuple(args) = args else {
            return Err(self.error(format!("REDUCE's arguments are a {}, not a tuple", args.kind())));
        };
        match callable {
            Value::Global(Global::OrderedDict) if args.is_empty() => Ok(Value::Dict(Rc::default())),
            Value::Global(Global::RebuildTensor) => {
                let [storage, offset, size, stride, _requires_grad, _hooks, ..] = &args[..] else {
                    return Err(self.error(format!("_rebuild_tensor_v2 gets {} arguments, not 6 or 7", args.len())));
                };
                if args.len() > 7 {
                    return Err(self.error(format!("_rebuild_tensor_v2 gets {} arguments, not 6 or 7", args.len())));
                }
                let Value::Storage(storage) = storage else {
                    return Err(self.error(format!("_rebuild_tensor_v2's storage is a {}", storage.kind())));
                };
                Ok(Value::Tensor(Rc::new(Tensor {
                    storage: storage.clone(),
                    offset: self.int(offset, "a storage offset")?,
                    shape: self.ints(size, "a tensor's size")?,
                    stride: self.ints(stride, "a tensor's stride")?,
                })))
            }
            Value::Global(Global::RebuildParameter) => match &args[..] {
                [tensor @ Value::Tensor(_), _requires_grad, _hooks] => Ok(tensor.clone()),
                _ => Err(self.error("_rebuild_parameter's arguments are not (tensor, requires_grad, hooks)")),
            },
            Value::Global(global) => {
                Err(self.error(format!("the pickle calls {global:?} with {} arguments", args.len())))
            }
            other => Err(self.error(format!("REDUCE calls a {}", other.kind()))),
        }
    }

    /// BINPERSID: `("storage", torch.<T>Storage, key, location, numel)`, the storage checked
    /// against its zip entry before it is used.
    fn persistent(&mut self, pid: Value) -> Result<Value, ClipError> {
        let Value::Tuple(pid) = &pid else {
            return Err(self.error(format!("a persistent id is a {}, not a tuple", pid.kind())));
        };
        let [Value::Str(tag), Value::Global(Global::Storage(kind)), Value::Str(key), Value::Str(_location), numel] =
            &pid[..]
        else {
            return Err(self.error("a persistent id is not (\"storage\", type, key, location, numel)"));
        };
        if &**tag != "storage" {
            return Err(self.error(format!("a persistent id of kind `{tag}`")));
        }
        let numel = usize::try_from(self.int(numel, "a storage's size")?)
            .map_err(|_| self.error(format!("storage `{key}` has a negative size")))?;
        let Some(&(start, len)) = self.archive.entries.get(&format!("{}data/{key}", self.archive.prefix)) else {
            return Err(self.error(format!("storage `{key}` has no entry `data/{key}` in the archive")));
        };
        if numel.checked_mul(kind.size()).is_none_or(|bytes| bytes > len) {
            return Err(self.error(format!(
                "storage `{key}` claims {numel} elements of {} bytes, its entry `data/{key}` holds {len} bytes",
                kind.size()
            )));
        }
        Ok(Value::Storage(Rc::new(Storage { kind: *kind, key: key.to_string(), start, numel })))
    }

    fn run(mut self) -> Result<Value, ClipError> {
        loop {
            let at = self.pos;
            let op = self.byte()?;
            match op {
                0x80 => {
                    let protocol = self.byte()?;
                    if !(2..=5).contains(&protocol) {
                        return Err(self.error(format!("pickle protocol {protocol} (torch.save writes 2)")));
                    }
                }
                0x95 => {
                    self.u64()?; // FRAME: a length hint
                }
                b'}' => self.push(Value::Dict(Rc::default())),
                b']' => self.push(Value::List(Rc::default())),
                b')' => self.push(Value::tuple(Vec::new())),
                b'(' => self.marks.push(self.stack.len()),
                b'0' => {
                    self.pop()?;
                }
                b'1' => {
                    self.pop_mark()?;
                }
                b'2' => {
                    let top = self.top()?.clone();
                    self.push(top);
                }
                b'X' => {
                    let n = self.u32()?;
                    let s = self.text(n.into())?;
                    self.push(s);
                }
                0x8c => {
                    let n = self.byte()?;
                    let s = self.text(n.into())?;
                    self.push(s);
                }
                0x8d => {
                    let n = self.u64()?;
                    let s = self.text(n)?;
                    self.push(s);
                }
                b'U' | b'T' | b'C' | b'B' => {
                    let n = if matches!(op, b'U' | b'C') { self.byte()?.into() } else { self.u32()? as usize };
                    self.take(n)?;
                    self.push(Value::Bytes);
                }
                b'J' => {
                    let v = self.u32()? as i32;
                    self.push(Value::Int(v.into()));
                }
                b'K' => {
                    let v = self.byte()?;
                    self.push(Value::Int(v.into()));
                }
                b'M' => {
                    let v = self.u16()?;
                    self.push(Value::Int(v.into()));
                }
                0x8a => {
                    let n = self.byte()? as usize;
                    if n > 8 {
                        return Err(self.error(format!("an integer of {n} bytes")));
                    }
                    let bytes = self.take(n)?;
                    let fill = if bytes.last().is_some_and(|&b| b & 0x80 != 0) { 0xff } else { 0 };
                    let mut le = [fill; 8];
                    le[..n].copy_from_slice(bytes);
                    self.push(Value::Int(i64::from_le_bytes(le)));
                }
                b'N' => self.push(Value::None),
                0x88 => self.push(Value::Bool(true)),
                0x89 => self.push(Value::Bool(false)),
                b'G' => {
                    self.take(8)?;
                    self.push(Value::Float);
                }
                b't' => {
                    let items = self.pop_mark()?;
                    self.push(Value::tuple(items));
                }
                0x85..=0x87 => {
                    let n = (op - 0x84) as usize;
                    let mut items = (0..n).map(|_| self.pop()).collect::<Result<Vec<_>, _>>()?;
                    items.reverse();
                    self.push(Value::tuple(items));
                }
                b's' | b'u' => {
                    let items = if op == b's' {
                        let value = self.pop()?;
                        let key = self.pop()?;
                        vec![key, value]
                    } else {
                        self.pop_mark()?
                    };
                    if items.len() % 2 != 0 {
                        return Err(self.error("SETITEMS with a key and no value"));
                    }
                    let Value::Dict(dict) = self.top()? else {
                        return Err(self.error(format!("SETITEM on a {}", self.top()?.kind())));
                    };
                    let mut dict = dict.borrow_mut();
                    let mut items = items.into_iter();
                    while let (Some(k), Some(v)) = (items.next(), items.next()) {
                        dict.push((k, v));
                    }
                }
                b'a' | b'e' => {
                    let items = if op == b'a' { vec![self.pop()?] } else { self.pop_mark()? };
                    let Value::List(list) = self.top()? else {
                        return Err(self.error(format!("APPEND on a {}", self.top()?.kind())));
                    };
                    list.borrow_mut().extend(items);
                }
                b'q' => {
                    let i = self.byte()?;
                    self.memo_put(i.into())?;
                }
                b'r' => {
                    let i = self.u32()?;
                    self.memo_put(i)?;
                }
                0x94 => {
                    let i = u32::try_from(self.memo.len()).map_err(|_| self.error("a memo past 2^32 entries"))?;
                    self.memo_put(i)?;
                }
                b'h' => {
                    let i = self.byte()?;
                    self.memo_get(i.into())?;
                }
                b'j' => {
                    let i = self.u32()?;
                    self.memo_get(i)?;
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    self.global(module, name)?;
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    let (Value::Str(module), Value::Str(name)) = (&module, &name) else {
                        return Err(self.error("STACK_GLOBAL's module and name are not strings"));
                    };
                    self.global(module, name)?;
                }
                b'R' => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    let value = self.reduce(&callable, &args)?;
                    self.push(value);
                }
                b'b' => {
                    let state = self.pop()?;
                    match (self.top()?, &state) {
                        // An OrderedDict's attributes (a state dict's `_metadata`): not needed.
                        (Value::Dict(_), Value::Dict(_) | Value::None) => {}
                        (target, _) => {
                            return Err(self.error(format!(
                                "BUILD sets the state of a {} from a {}",
                                target.kind(),
                                state.kind()
                            )))
                        }
                    }
                }
                b'Q' => {
                    let pid = self.pop()?;
                    let storage = self.persistent(pid)?;
                    self.push(storage);
                }
                b'.' => {
                    let value = self.pop()?;
                    return Ok(value);
                }
                other => {
                    return Err(self.error(format!(
                        "the pickle has opcode 0x{other:02x} at byte {at}, which torch.save does not write; \
                         refusing (nothing is executed)"
                    )))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A torch.save-style zip around `pickle`, with `storages` as `data/<key>`.
    fn archive_bytes(pickle: &[u8], storages: &[(&str, &[u8])]) -> Vec<u8> {
        // Stored entries only: local headers, the central directory and its end record.
        let mut files: Vec<(String, Vec<u8>)> = vec![("t/data.pkl".into(), pickle.to_vec())];
        files.extend(storages.iter().map(|(k, b)| (format!("t/data/{k}"), b.to_vec())));
        let (mut out, mut central) = (Vec::new(), Vec::new());
        for (name, data) in &files {
            let offset = out.len() as u32;
            let crc = crc32(data);
            let header = |sig: &[u8], central: bool| {
                let mut h = sig.to_vec();
                if central {
                    h.extend(20u16.to_le_bytes());
                }
                h.extend([20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
                h.extend(crc.to_le_bytes());
                h.extend((data.len() as u32).to_le_bytes());
                h.extend((data.len() as u32).to_le_bytes());
                h.extend((name.len() as u16).to_le_bytes());
                h.extend(0u16.to_le_bytes());
                if central {
                    h.extend([0; 10]);
                    h.extend(offset.to_le_bytes());
                }
                h.extend(name.as_bytes());
                h
            };
            out.extend(header(b"PK\x03\x04", false));
            out.extend(data);
            central.extend(header(b"PK\x01\x02", true));
        }
        let (start, len) = (out.len() as u32, central.len() as u32);
        out.extend(central);
        out.extend(b"PK\x05\x06\0\0\0\0");
        out.extend((files.len() as u16).to_le_bytes());
        out.extend((files.len() as u16).to_le_bytes());
        out.extend(len.to_le_bytes());
        out.extend(start.to_le_bytes());
        out.extend(0u16.to_le_bytes());
        out
    }

    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in bytes {
            crc ^= b as u32;
            for _ in 0..8 {
                crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
            }
        }
        !crc
    }

    fn unicode(text: &str) -> Vec<u8> {
        let mut out = vec![b'X'];
        out.extend((text.len() as u32).to_le_bytes());
        out.extend(text.as_bytes());
        out
    }

    /// `{"state_dict": {name: <value>}}`.
    fn state(name: &str, value: &[u8]) -> Vec<u8> {
        let mut p = b"\x80\x02}".to_vec();
        p.extend(unicode("state_dict"));
        p.push(b'}');
        p.extend(unicode(name));
        p.extend(value);
        p.extend(b"ss.");
        p
    }

    /// `_rebuild_tensor_v2(storage "0" of `numel` floats, offset, shape, stride, False, OrderedDict())`.
    fn tensor(numel: u8, offset: u8, shape: &[u8], stride: &[u8]) -> Vec<u8> {
        let mut p = b"ctorch._utils\n_rebuild_tensor_v2\n((".to_vec();
        p.extend(unicode("storage"));
        p.extend(b"ctorch\nFloatStorage\n");
        p.extend(unicode("0"));
        p.extend(unicode("cpu"));
        p.extend([b'K', numel, b't', b'Q', b'K', offset, b'(']);
        shape.iter().for_each(|&d| p.extend([b'K', d]));
        p.push(b't');
        p.push(b'(');
        stride.iter().for_each(|&s| p.extend([b'K', s]));
        p.extend(b"t\x89ccollections\nOrderedDict\n)RtR");
        p
    }

    fn floats(values: &[f32]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    /// A tensor's name, shape and f32 values.
    type Read = (String, Vec<usize>, Vec<f32>);

    fn read(pickle: &[u8], storages: &[(&str, &[u8])]) -> Result<Vec<Read>, String> {
        let bytes = archive_bytes(pickle, storages);
        let state = read_state_dict("t.pt", &bytes).map_err(|e| e.to_string())?;
        Ok(state
            .tensors
            .into_iter()
            .map(|(n, t)| {
                assert_eq!(t.dtype, Dtype::F32);
                let values = t.data.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
                (n, t.shape, values)
            })
            .collect())
    }

    #[test]
    fn views_are_sliced_at_their_offset_and_gathered_when_strided() {
        let storage = floats(&[0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        // [2, 3] from offset 1: rows 1 2 3 / 4 5 6.
        let got = read(&state("w", &tensor(7, 1, &[2, 3], &[3, 1])), &[("0", &storage)]).unwrap();
        assert_eq!(got, vec![("w".into(), vec![2, 3], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0])]);
        // Its transpose: [3, 2] with strides (1, 3).
        let got = read(&state("w", &tensor(7, 1, &[3, 2], &[1, 3])), &[("0", &storage)]).unwrap();
        assert_eq!(got[0].2, vec![1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
    }

    #[test]
    fn views_past_their_storage_and_storages_past_their_entry_are_refused() {
        let storage = floats(&[0.0; 6]);
        let err = read(&state("w", &tensor(6, 1, &[2, 3], &[3, 1])), &[("0", &storage)]).unwrap_err();
        assert!(
            err.contains("t.pt: tensor `w`: its view (offset 1, shape [2, 3], strides [3, 1]) reaches past"),
            "{err}"
        );
        let err = read(&state("w", &tensor(7, 0, &[2, 3], &[3, 1])), &[("0", &storage)]).unwrap_err();
        assert!(
            err.contains("reading `w`, storage `0` claims 7 elements of 4 bytes, its entry `data/0` holds 24"),
            "{err}"
        );
        let err = read(&state("w", &tensor(6, 0, &[2, 3], &[3, 1])), &[]).unwrap_err();
        assert!(err.contains("storage `0` has no entry `data/0`"), "{err}");
        // An expanded (stride 0) view larger than its storage is not gathered.
        let err = read(&state("w", &tensor(6, 0, &[100, 3], &[0, 1])), &[("0", &storage)]).unwrap_err();
        assert!(err.contains("expanded tensors are not read"), "{err}");
    }

    #[test]
    fn only_whitelisted_globals_are_accepted() {
        // builtins.eval through STACK_GLOBAL (protocol 4's spelling).
        let mut call = unicode("builtins");
        call.extend(unicode("eval"));
        call.push(0x93);
        call.extend(unicode("1+1"));
        call.extend(b"\x85R");
        let err = read(&state("visual.proj", &call), &[]).unwrap_err();
        assert_eq!(
            err,
            "t.pt: reading `visual.proj`, the pickle asks for builtins.eval, which is not a tensor or plain \
             container; refusing (nothing is executed)"
        );
        // A whitelisted name in another module is still refused.
        let err = read(&state("w", b"ctorch\nload\n)R"), &[]).unwrap_err();
        assert!(err.contains("asks for torch.load"), "{err}");
        // An opcode torch never writes (INST, which calls a class).
        let err = read(&state("w", b"(ios\nsystem\n"), &[]).unwrap_err();
        assert!(err.contains("opcode 0x69"), "{err}");
    }

    #[test]
    fn malformed_pickles_fail_without_panicking() {
        let good = state("w", &tensor(6, 0, &[2, 3], &[3, 1]));
        let storage = floats(&[0.0; 6]);
        for cut in 0..good.len() {
            assert!(read(&good[..cut], &[("0", &storage)]).is_err(), "cut at {cut}");
        }
        // Operand lengths past the end allocate nothing.
        let mut huge = b"\x80\x02X".to_vec();
        huge.extend(u32::MAX.to_le_bytes());
        assert!(read(&huge, &[]).unwrap_err().contains("ends inside an operand"));
        let err = read(b"\x80\x02h\x05.", &[]).unwrap_err();
        assert!(err.contains("memo 5 is empty"), "{err}");
        let err = read(b"\x80\x020.", &[]).unwrap_err();
        assert!(err.contains("empty stack"), "{err}");
        let err = read(b"\x80\x02K\x01.", &[]).unwrap_err();
        assert!(err.contains("holds `int` where"), "{err}");
        // A million nested tuples (one byte each) and nested lists: freed without recursion.
        let mut deep = b"\x80\x02)".to_vec();
        deep.extend(std::iter::repeat_n(0x85, 1_000_000));
        deep.push(b'.');
        assert!(read(&deep, &[]).unwrap_err().contains("holds `tuple` where"));
        // [[[…]]]: each new list memoized (MEMOIZE), appended to the deepest one fetched from
        // the memo, then popped.
        let mut lists = b"\x80\x02]\x94".to_vec();
        for k in 0..200_000u32 {
            lists.push(b'j');
            lists.extend(k.to_le_bytes());
            lists.extend(b"]\x94a0");
        }
        lists.push(b'.');
        assert!(read(&lists, &[]).unwrap_err().contains("holds `list` where"));
    }

    /// A training checkpoint torch.save wrote (tests/fixtures/clip/hps_pt.py): shared
    /// storages at offsets, a transposed view, bf16, f64, a Parameter, an empty tensor,
    /// DataParallel's prefix, and optimizer state around the state dict; the values as torch
    /// read them back.
    #[test]
    fn torch_saved_views_read_as_torch_reads_them() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/clip/hps-pt");
        let bytes = std::fs::read(dir.join("views.pt")).unwrap();
        let expected: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("views.json")).unwrap()).unwrap();
        let state = read_state_dict("views.pt", &bytes).unwrap();
        assert_eq!(state.stripped_prefix, Some("module."));
        assert_eq!(state.other_entries, ["iterations", "name", "optimizer", "scaler"]);
        assert_eq!(state.narrowed, 1);
        let names: Vec<&str> = state.tensors.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["first", "second", "scalar", "transposed", "half", "double", "param", "empty"]);
        for (name, t) in &state.tensors {
            let want = &expected[name];
            let shape: Vec<usize> =
                want["shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
            assert_eq!(t.shape, shape, "{name}");
            let (dtype, values): (Dtype, Vec<f64>) = match want["dtype"].as_str().unwrap() {
                "float32" | "float64" => (
                    Dtype::F32,
                    t.data.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap()) as f64).collect(),
                ),
                "bfloat16" => (
                    Dtype::BF16,
                    t.data.chunks_exact(2).map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f64()).collect(),
                ),
                other => panic!("{other}"),
            };
            assert_eq!(t.dtype, dtype, "{name}");
            let want: Vec<f64> = want["values"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
            assert_eq!(values.len(), want.len(), "{name}");
            for (a, b) in values.iter().zip(&want) {
                // Exact in f32 (serde_json may parse the JSON's f64 an ulp off); f64 narrowed rounds.
                let same = if name == "double" { (a - b).abs() <= 1e-7 * b.abs() } else { *a as f32 == *b as f32 };
                assert!(same, "{name}: {a} vs {b}");
            }
        }
        // Contiguous views are borrowed from the file; the transposed one is gathered.
        let data = |n: &str| &state.tensors.iter().find(|(name, _)| name == n).unwrap().1.data;
        assert!(matches!(data("second"), Cow::Borrowed(_)));
        assert!(matches!(data("transposed"), Cow::Owned(_)));
    }

    #[test]
    fn not_a_zip_is_named() {
        let err = read_state_dict("x.pt", b"\x80\x02}.").unwrap_err().to_string();
        assert!(err.starts_with("x.pt: is a bare pickle"), "{err}");
        let err = read_state_dict("x.pt", b"hello").unwrap_err().to_string();
        assert!(err.contains("not a zip archive"), "{err}");
        let bytes = archive_bytes(&state("w", &tensor(6, 0, &[2, 3], &[3, 1])), &[("0", &floats(&[0.0; 6]))]);
        let err = read_state_dict("x.pt", &bytes[..bytes.len() - 30]).unwrap_err().to_string();
        assert!(err.contains("not a readable zip archive"), "{err}");
    }
}
