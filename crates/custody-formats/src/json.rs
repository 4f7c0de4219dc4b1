//! JSON plumbing shared by the JSON formats: one parse entry point that turns
//! serde_json's error categories into this crate's errors, and a helper for fields
//! that generators write as `null` instead of leaving them out.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::error::Category;

use crate::error::{FormatError, Syntax};
use crate::format::{Format, strip_bom};

/// Parses `bytes` into `T`. `format` is the detected format, if any: with it, a
/// document that is valid JSON but has the wrong shape is [`FormatError::Invalid`].
pub(crate) fn parse<T: DeserializeOwned>(
    file: &str,
    bytes: &[u8],
    format: Option<Format>,
) -> Result<T, FormatError> {
    serde_json::from_slice(strip_bom(bytes)).map_err(|e| {
        let file = file.to_owned();
        let detail = e.to_string();
        match (e.classify(), format) {
            (Category::Eof, _) => FormatError::Truncated {
                file,
                syntax: Syntax::Json,
                detail,
            },
            (Category::Data, Some(format)) => FormatError::Invalid {
                file,
                format,
                detail,
            },
            _ => FormatError::Malformed {
                file,
                syntax: Syntax::Json,
                detail,
            },
        }
    })
}

/// Deserializes `null` as the default value. Generators write `"repoDigests": null`
/// or `"components": null` where the schema says "absent or a list".
pub(crate) fn nullable<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Option::<T>::deserialize(deserializer).map(Option::unwrap_or_default)
}
