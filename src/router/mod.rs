//! Routing policies: retry, hedging and circuit breaking.
//!
//! Each policy is a small module of pure decision logic ("given these observations and this clock,
//! what next?"). None of them sleeps, spawns or does I/O: they take the current time and, where
//! randomness is involved, a random number generator, and the router's attempt loop acts on their
//! answers. The configuration types below are what a user hands to the router builder.

mod backoff;
mod circuit;
mod clock;
mod hedge;
mod rest;
mod retry;
mod stats;

pub use circuit::{CircuitBreaker, CircuitStatus};
pub use hedge::HedgePolicy;
pub use retry::RetryPolicy;
