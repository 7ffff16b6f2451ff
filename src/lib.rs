//! modelgate: one Rust API for every LLM provider.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod error;

#[cfg(feature = "simulator")]
#[cfg_attr(docsrs, doc(cfg(feature = "simulator")))]
pub mod simulator;

pub use error::{Error, ErrorKind};
