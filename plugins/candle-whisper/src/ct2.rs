//! CTranslate2's `model.bin`, read natively (faster-whisper's checkpoints are in this format).
//!
//! The layout, as `ctranslate2/specs/model_spec.py::_serialize` writes it (little-endian):
//! `u32` binary version, spec name, `u32` spec revision, `u32` variable count, then per
//! variable: name, `u8` rank, `u32` per dimension, `u8` dtype id, `u32` byte count, the bytes;
//! then `u32` alias count and `(alias, target)` name pairs. Strings are a `u16` length that
//! counts a trailing NUL, then the bytes and that NUL. Dtype ids follow CTranslate2's
//! `DataType` enum: float32, int8, int16, int32, float16, bfloat16.
//!
//! Quantized weights (`int8`, `int8_float16`, `int16`) are dequantized here with their stored
//! `<name>_scale` (per output row for int8, one scalar for int16): CTranslate2 stores
//! `round(w * scale)`, so `w = q / scale`.

use std::{collections::HashMap, io::Read, path::Path};

use candle_core::{DType, Device, Tensor};
use half::slice::HalfFloatSliceExt;

/// The binary versions this reader understands (CTranslate2 3.x and 4.x write 6).
const SUPPORTED_VERSIONS: std::ops::RangeInclusive<u32> = 5..=6;

/// CTranslate2's storage types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ct2Type {
    F32,
    I8,
    I16,
    I32,
    F16,
    BF16,
}

impl Ct2Type {
    fn from_id(id: u8) -> Result<Self, String> {
        Ok(match id {
            0 => Ct2Type::F32,
            1 => Ct2Type::I8,
            2 => Ct2Type::I16,
            3 => Ct2Type::I32,
            4 => Ct2Type::F16,
            5 => Ct2Type::BF16,
            other => return Err(format!("unknown CTranslate2 dtype id {other}")),
        })
    }

    fn size(self) -> usize {
        match self {
            Ct2Type::I8 => 1,
            Ct2Type::I16 | Ct2Type::F16 | Ct2Type::BF16 => 2,
            Ct2Type::F32 | Ct2Type::I32 => 4,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Ct2Type::F32 => "float32",
            Ct2Type::I8 => "int8",
            Ct2Type::I16 => "int16",
            Ct2Type::I32 => "int32",
            Ct2Type::F16 => "float16",
            Ct2Type::BF16 => "bfloat16",
        }
    }
}

/// One stored variable.
#[derive(Clone, Debug)]
pub struct Variable {
    pub shape: Vec<usize>,
    pub dtype: Ct2Type,
    pub bytes: Vec<u8>,
}

impl Variable {
    /// Every element as f32 (integers by value).
    pub fn to_f32(&self) -> Vec<f32> {
        let chunks = self.bytes.chunks_exact(self.dtype.size());
        match self.dtype {
            Ct2Type::F32 => chunks.map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
            Ct2Type::I32 => chunks.map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f32).collect(),
            Ct2Type::I16 => chunks.map(|b| f32::from(i16::from_le_bytes([b[0], b[1]]))).collect(),
            Ct2Type::I8 => self.bytes.iter().map(|b| f32::from(*b as i8)).collect(),
            Ct2Type::F16 => {
                // `half` converts with the CPU's F16C instructions where it has them; through a
                // small buffer, since a second copy of the weights costs more in page faults.
                let mut values = vec![0f32; self.bytes.len() / 2];
                let mut halves = [half::f16::ZERO; 1024];
                for (bytes, values) in
                    self.bytes.chunks(2 * halves.len()).zip(values.chunks_mut(halves.len()))
                {
                    let halves = &mut halves[..values.len()];
                    for (half, b) in halves.iter_mut().zip(bytes.chunks_exact(2)) {
                        *half = half::f16::from_le_bytes([b[0], b[1]]);
                    }
                    halves.convert_to_f32_slice(values);
                }
                values
            }
            Ct2Type::BF16 => {
                chunks.map(|b| f32::from_bits(u32::from(u16::from_le_bytes([b[0], b[1]])) << 16)).collect()
            }
        }
    }

    /// A scalar's value as an integer (e.g. `num_heads`).
    pub fn scalar(&self) -> Option<i64> {
        self.to_f32().first().map(|value| *value as i64)
    }
}

/// A parsed `model.bin`.
#[derive(Debug)]
pub struct Ct2Model {
    pub version: u32,
    pub spec: String,
    pub revision: u32,
    pub variables: HashMap<String, Variable>,
    pub aliases: HashMap<String, String>,
}

/// Reads the file front to back, each variable's bytes straight into their own buffer (no
/// copy of the whole file first).
struct Cursor<R> {
    reader: R,
    at: usize,
    len: usize,
}

impl<R: Read> Cursor<R> {
    fn fill(&mut self, buffer: &mut [u8]) -> Result<(), String> {
        let end = self.at.checked_add(buffer.len()).filter(|end| *end <= self.len);
        let end = end.ok_or_else(|| format!("model.bin ends early at byte {}", self.at))?;
        self.reader
            .read_exact(buffer)
            .map_err(|error| format!("cannot read model.bin bytes {}..{end}: {error}", self.at))?;
        self.at = end;
        Ok(())
    }
    fn take(&mut self, count: usize) -> Result<Vec<u8>, String> {
        // Checked against the length before allocating, so a corrupt count cannot ask for 4 GB.
        if self.at.checked_add(count).is_none_or(|end| end > self.len) {
            return Err(format!("model.bin ends early at byte {}", self.at));
        }
        let mut bytes = vec![0u8; count];
        self.fill(&mut bytes)?;
        Ok(bytes)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut bytes = [0u8; N];
        self.fill(&mut bytes)?;
        Ok(bytes)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.array::<1>()?[0])
    }
    fn u16(&mut self) -> Result<u16, String> {
        Ok(u16::from_le_bytes(self.array()?))
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    fn string(&mut self) -> Result<String, String> {
        let length = usize::from(self.u16()?);
        let mut bytes = self.take(length)?;
        if bytes.last() == Some(&0) {
            bytes.pop();
        }
        String::from_utf8(bytes).map_err(|_| format!("a name before byte {} is not UTF-8", self.at))
    }
}

impl Ct2Model {
    pub fn read(path: &Path) -> Result<Self, String> {
        let cannot = |error: std::io::Error| format!("cannot read `{}`: {error}", path.display());
        let file = std::fs::File::open(path).map_err(cannot)?;
        let len = file.metadata().map_err(cannot)?.len();
        let len = usize::try_from(len).map_err(|_| format!("`{}` is too large", path.display()))?;
        let reader = std::io::BufReader::with_capacity(1 << 16, file);
        Self::parse_from(Cursor { reader, at: 0, len })
            .map_err(|error| format!("`{}`: {error}", path.display()))
    }

    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        Self::parse_from(Cursor { reader: bytes, at: 0, len: bytes.len() })
    }

    fn parse_from(mut cursor: Cursor<impl Read>) -> Result<Self, String> {
        let version = cursor.u32()?;
        if !SUPPORTED_VERSIONS.contains(&version) {
            return Err(format!(
                "CTranslate2 binary version {version} is not supported (this reader knows {}..={}; re-convert with CTranslate2 >= 3)",
                SUPPORTED_VERSIONS.start(),
                SUPPORTED_VERSIONS.end()
            ));
        }
        let spec = cursor.string()?;
        let revision = cursor.u32()?;
        let count = cursor.u32()? as usize;
        let mut variables = HashMap::with_capacity(count);
        for _ in 0..count {
            let name = cursor.string()?;
            let rank = usize::from(cursor.u8()?);
            let shape = (0..rank).map(|_| cursor.u32().map(|d| d as usize)).collect::<Result<Vec<_>, _>>()?;
            let dtype = Ct2Type::from_id(cursor.u8()?)?;
            let length = cursor.u32()? as usize;
            let elements: usize = shape.iter().product();
            if elements * dtype.size() != length {
                return Err(format!(
                    "variable `{name}`: {length} bytes do not fit shape {shape:?} of {}",
                    dtype.name()
                ));
            }
            let bytes = cursor.take(length)?;
            variables.insert(name, Variable { shape, dtype, bytes });
        }
        let mut aliases = HashMap::new();
        let alias_count = cursor.u32()? as usize;
        for _ in 0..alias_count {
            let alias = cursor.string()?;
            let target = cursor.string()?;
            aliases.insert(alias, target);
        }
        Ok(Ct2Model { version, spec, revision, variables, aliases })
    }

    /// A variable by name, following aliases.
    pub fn get(&self, name: &str) -> Option<&Variable> {
        self.variables
            .get(name)
            .or_else(|| self.aliases.get(name).and_then(|target| self.variables.get(target)))
    }

    /// The variable as an f32 tensor, dequantized when it is stored as integers with a scale.
    pub fn tensor(&self, name: &str, device: &Device) -> Result<Tensor, String> {
        let variable = self.get(name).ok_or_else(|| format!("model.bin has no `{name}`"))?;
        let mut values = variable.to_f32();
        if matches!(variable.dtype, Ct2Type::I8 | Ct2Type::I16) {
            let scale = self.get(&format!("{name}_scale")).ok_or_else(|| {
                format!("`{name}` is stored as {} without `{name}_scale`", variable.dtype.name())
            })?;
            let scales = scale.to_f32();
            let rows = variable.shape.first().copied().unwrap_or(1).max(1);
            let per_row = values.len() / rows;
            match scales.len() {
                1 => values.iter_mut().for_each(|v| *v /= scales[0]),
                n if n == rows => {
                    for (row, chunk) in values.chunks_mut(per_row.max(1)).enumerate() {
                        chunk.iter_mut().for_each(|v| *v /= scales[row]);
                    }
                }
                n => return Err(format!("`{name}_scale` has {n} values for {rows} rows")),
            }
        }
        Tensor::from_vec(values, variable.shape.clone(), device)
            .and_then(|tensor| tensor.to_dtype(DType::F32))
            .map_err(|error| format!("`{name}`: {error}"))
    }

    /// The storage type of the model's large weights, for logs.
    pub fn weight_dtype(&self) -> Option<Ct2Type> {
        self.get("decoder/layer_0/ffn/linear_0/weight").map(|variable| variable.dtype)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_floats_decode() {
        // 1, -2, the smallest subnormal, the largest normal, infinity; little-endian.
        let bits: [u16; 5] = [0x3c00, 0xc000, 0x0001, 0x7bff, 0x7c00];
        let variable = Variable {
            shape: vec![bits.len()],
            dtype: Ct2Type::F16,
            bytes: bits.iter().flat_map(|b| b.to_le_bytes()).collect(),
        };
        let values = variable.to_f32();
        assert_eq!(values[..4], [1.0, -2.0, 2f32.powi(-24), 65504.0]);
        assert!(values[4].is_infinite());
    }

    #[test]
    fn truncated_files_are_refused() {
        assert!(Ct2Model::parse(&[6, 0]).unwrap_err().contains("ends early"));
        assert!(Ct2Model::parse(&[9, 0, 0, 0]).unwrap_err().contains("version 9"));
        // On disk: a variable that claims 4 GB after a valid header is refused before any
        // allocation of that size, naming the file.
        let mut bytes = 6u32.to_le_bytes().to_vec();
        let string = |text: &str, out: &mut Vec<u8>| {
            out.extend(((text.len() + 1) as u16).to_le_bytes());
            out.extend(text.as_bytes());
            out.push(0);
        };
        string("WhisperSpec", &mut bytes);
        bytes.extend(1u32.to_le_bytes());
        bytes.extend(1u32.to_le_bytes());
        string("encoder/conv1/weight", &mut bytes);
        bytes.push(1);
        bytes.extend((u32::MAX / 4).to_le_bytes());
        bytes.push(0);
        bytes.extend((u32::MAX / 4 * 4).to_le_bytes());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.bin");
        std::fs::write(&path, &bytes).unwrap();
        let error = Ct2Model::read(&path).unwrap_err();
        assert!(error.contains("model.bin") && error.contains("ends early"), "{error}");
    }
}
