//! Integration tests of the Tessera foundation: imports of the real fixtures, every HTTP
//! endpoint and error, a property test against brute force, the CLI and GDAL interop.

mod api;
mod cli;
mod errors;
mod gdal;
mod import;
mod props;
mod stall;
mod support;
mod tiles;
