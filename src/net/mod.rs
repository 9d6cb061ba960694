//! The network description and its interpreters. An architecture describes its forward
//! pass once against the [`graph::Graph`] trait with the [`layers`]; the same description
//! then runs as candle operations with autograd ([`candle_graph`], any device), on the CPU
//! tape with an input-only reverse pass ([`tape`]), or as a cost count ([`cost`]). A
//! straight-line input ([`line`]) lets the tape run the first convolution on the path's two
//! ends only.

pub mod candle_graph;
pub mod composite;
pub mod cost;
pub mod graph;
pub mod layers;
pub mod line;
pub mod tape;
