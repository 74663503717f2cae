//! Reading f32 tensors out of a `.safetensors` file: an 8-byte little-endian header length, a
//! JSON header naming each tensor's dtype, shape and byte range, then the raw data.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

/// Why a weights file could not be read.
#[derive(Debug)]
pub enum WeightsError {
    Io(std::io::Error),
    /// The file is not laid out as a safetensors file (truncated, bad header, ranges outside it).
    Format(String),
    Missing(String),
    WrongShape {
        name: String,
        expected: Vec<usize>,
        found: Vec<usize>,
    },
}

impl fmt::Display for WeightsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(error) => write!(f, "cannot read the weights: {error}"),
            Self::Format(why) => write!(f, "the weights file is not a valid safetensors file: {why}"),
            Self::Missing(name) => write!(f, "the weights have no tensor {name}"),
            Self::WrongShape {
                name,
                expected,
                found,
            } => {
                write!(f, "tensor {name} has shape {found:?}, expected {expected:?}")
            }
        }
    }
}

impl std::error::Error for WeightsError {}

impl From<std::io::Error> for WeightsError {
    fn from(error: std::io::Error) -> Self {
        Self::Io(error)
    }
}

struct Entry {
    dtype: String,
    shape: Vec<usize>,
    start: usize,
    end: usize,
}

/// A safetensors file held in memory, from which tensors are copied out by name.
pub struct SafeTensors {
    bytes: Vec<u8>,
    data_start: usize,
    entries: HashMap<String, Entry>,
}

impl SafeTensors {
    pub fn read(path: &Path) -> Result<Self, WeightsError> {
        Self::parse(std::fs::read(path)?)
    }

    pub fn parse(bytes: Vec<u8>) -> Result<Self, WeightsError> {
        let format = |why: &str| WeightsError::Format(why.to_owned());
        let length: [u8; 8] = bytes
            .get(..8)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| format("too short"))?;
        let header_len =
            usize::try_from(u64::from_le_bytes(length)).map_err(|_| format("header too long"))?;
        let data_start = header_len
            .checked_add(8)
            .ok_or_else(|| format("header too long"))?;
        let header = bytes
            .get(8..data_start)
            .ok_or_else(|| format("header runs past the end"))?;
        let header: serde_json::Value =
            serde_json::from_slice(header).map_err(|e| WeightsError::Format(format!("header: {e}")))?;
        let header = header
            .as_object()
            .ok_or_else(|| format("header is not an object"))?;
        let data_len = bytes.len() - data_start;
        let mut entries = HashMap::new();
        for (name, info) in header {
            if name == "__metadata__" {
                continue;
            }
            let bad = || WeightsError::Format(format!("entry {name} is malformed"));
            let dtype = info
                .get("dtype")
                .and_then(|d| d.as_str())
                .ok_or_else(bad)?
                .to_owned();
            let numbers = |key: &str| -> Result<Vec<usize>, WeightsError> {
                info.get(key)
                    .and_then(|v| v.as_array())
                    .ok_or_else(bad)?
                    .iter()
                    .map(|n| n.as_u64().and_then(|n| usize::try_from(n).ok()).ok_or_else(bad))
                    .collect()
            };
            let shape = numbers("shape")?;
            let &[start, end] = numbers("data_offsets")?.as_slice() else {
                return Err(bad());
            };
            if start > end || end > data_len {
                return Err(WeightsError::Format(format!(
                    "entry {name} lies outside the data"
                )));
            }
            entries.insert(
                name.clone(),
                Entry {
                    dtype,
                    shape,
                    start,
                    end,
                },
            );
        }
        Ok(Self {
            bytes,
            data_start,
            entries,
        })
    }

    /// A copy of the f32 tensor `name`, checked to have exactly `shape`.
    pub fn f32_tensor(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>, WeightsError> {
        let entry = self
            .entries
            .get(name)
            .ok_or_else(|| WeightsError::Missing(name.to_owned()))?;
        if entry.shape != shape {
            return Err(WeightsError::WrongShape {
                name: name.to_owned(),
                expected: shape.to_vec(),
                found: entry.shape.clone(),
            });
        }
        if entry.dtype != "F32" {
            return Err(WeightsError::Format(format!(
                "{name} is {}, not F32",
                entry.dtype
            )));
        }
        let count: usize = shape.iter().product();
        if entry.end - entry.start != count * 4 {
            return Err(WeightsError::Format(format!(
                "{name}'s byte range does not match its shape"
            )));
        }
        let data = &self.bytes[self.data_start + entry.start..self.data_start + entry.end];
        Ok(data
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(header: &str, data: &[u8]) -> Vec<u8> {
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend_from_slice(data);
        bytes
    }

    #[test]
    fn a_tensor_is_read_little_endian_with_its_shape_checked() -> Result<(), WeightsError> {
        let data: Vec<u8> = [1.0f32, -2.5, 3.25]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let bytes = file(
            r#"{"__metadata__":{"format":"pt"},"w":{"dtype":"F32","shape":[3],"data_offsets":[0,12]}}"#,
            &data,
        );
        let tensors = SafeTensors::parse(bytes)?;
        assert_eq!(tensors.f32_tensor("w", &[3])?, vec![1.0, -2.5, 3.25]);
        assert!(matches!(
            tensors.f32_tensor("w", &[1, 3]),
            Err(WeightsError::WrongShape { .. })
        ));
        assert!(matches!(
            tensors.f32_tensor("v", &[3]),
            Err(WeightsError::Missing(_))
        ));
        Ok(())
    }

    #[test]
    fn malformed_files_are_refused_with_a_reason() {
        let cases: [(&str, Vec<u8>); 4] = [
            ("shorter than the length prefix", vec![1, 2, 3]),
            ("header longer than the file", file("{}", &[])[..9].to_vec()),
            ("header not JSON", file("nope", &[])),
            (
                "range past the data",
                file(
                    r#"{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,12]}}"#,
                    &[0; 8],
                ),
            ),
        ];
        for (description, bytes) in cases {
            assert!(
                matches!(SafeTensors::parse(bytes), Err(WeightsError::Format(_))),
                "{description}"
            );
        }
    }
}
