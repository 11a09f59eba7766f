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

use std::{collections::HashMap, path::Path};

use candle_core::{DType, Device, Tensor};

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
            Ct2Type::F16 => chunks.map(|b| half_to_f32(u16::from_le_bytes([b[0], b[1]]))).collect(),
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

/// IEEE half to f32 (no dependency on `half` just for this).
fn half_to_f32(bits: u16) -> f32 {
    let sign = u32::from(bits >> 15) << 31;
    let exponent = u32::from((bits >> 10) & 0x1f);
    let mantissa = u32::from(bits & 0x3ff);
    let value = match (exponent, mantissa) {
        (0, 0) => sign,
        (0, _) => {
            // Subnormal: normalise.
            let mut e = 127 - 15 + 1;
            let mut m = mantissa;
            while m & 0x400 == 0 {
                m <<= 1;
                e -= 1;
            }
            sign | (e << 23) | ((m & 0x3ff) << 13)
        }
        (0x1f, 0) => sign | 0x7f80_0000,
        (0x1f, _) => sign | 0x7fc0_0000,
        _ => sign | ((exponent + 127 - 15) << 23) | (mantissa << 13),
    };
    f32::from_bits(value)
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

struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, count: usize) -> Result<&'a [u8], String> {
        let end = self.at.checked_add(count).filter(|end| *end <= self.bytes.len());
        let end = end.ok_or_else(|| format!("model.bin ends early at byte {}", self.at))?;
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, String> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn string(&mut self) -> Result<String, String> {
        let length = usize::from(self.u16()?);
        let bytes = self.take(length)?;
        let text = bytes.strip_suffix(&[0]).unwrap_or(bytes);
        String::from_utf8(text.to_vec()).map_err(|_| format!("a name before byte {} is not UTF-8", self.at))
    }
}

impl Ct2Model {
    pub fn read(path: &Path) -> Result<Self, String> {
        let bytes =
            std::fs::read(path).map_err(|error| format!("cannot read `{}`: {error}", path.display()))?;
        Self::parse(&bytes).map_err(|error| format!("`{}`: {error}", path.display()))
    }

    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let mut cursor = Cursor { bytes, at: 0 };
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
            let bytes = cursor.take(length)?.to_vec();
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
        assert_eq!(half_to_f32(0x3c00), 1.0);
        assert_eq!(half_to_f32(0xc000), -2.0);
        assert_eq!(half_to_f32(0x0001), 2f32.powi(-24));
        assert_eq!(half_to_f32(0x7bff), 65504.0);
        assert!(half_to_f32(0x7c00).is_infinite());
    }

    #[test]
    fn truncated_files_are_refused() {
        assert!(Ct2Model::parse(&[6, 0]).unwrap_err().contains("ends early"));
        assert!(Ct2Model::parse(&[9, 0, 0, 0]).unwrap_err().contains("version 9"));
    }
}
