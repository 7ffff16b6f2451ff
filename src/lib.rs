//! modelgate: one Rust API for every LLM provider.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod error;
pub mod router;

pub use error::{Error, ErrorKind};
