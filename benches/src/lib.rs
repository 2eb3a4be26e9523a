//! Shared pieces of ipam's benchmarks: deterministic data sets, timing with medians, and the
//! JSON report format that every `ipam-bench` suite writes.

pub mod data;
pub mod report;
pub mod timing;
