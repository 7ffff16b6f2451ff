//! The router against the fault-injecting simulator, with tokio's paused clock wherever timing
//! matters: every duration asserted here is exact, and no test sleeps in real time.
#![cfg(all(feature = "simulator", feature = "openai"))]

#[path = "../support/sim.rs"]
mod sim;

mod basics;
mod budget;
mod circuit;
mod deadline;
mod hedge;
mod rest;
mod retry;
mod stats;
mod strategy;
mod stream;
