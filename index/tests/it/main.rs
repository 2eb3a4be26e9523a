//! Integration tests of `ipam-index`: one binary, a module per area.

mod edges;
mod model;
mod props;
mod snapshot;
