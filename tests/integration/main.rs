//! Integration tests of the Tessera foundation: imports of the real fixtures, every HTTP
//! endpoint and error, a property test against brute force, the CLI and GDAL interop.

mod adversarial;
mod aggregate;
mod api;
mod append;
mod archives;
mod bake;
mod basemap;
mod cli;
mod cluster;
mod copy;
mod crash;
mod dashboards;
mod details;
mod errors;
mod fuzz_requests;
mod gdal;
mod health;
mod hostile_requests;
mod ics;
mod import;
mod labels;
mod links;
mod pages;
mod pictures;
mod props;
mod seam;
mod stall;
mod support;
mod tiles;
mod time_values;
