//! Tessera: a map tile and feature server for open government data.
//!
//! Data flows one way through the modules:
//! - [`ingest`] reads CSV and GeoJSON files into records (position, typed-later text
//!   values, time), streaming and with file + line on every error;
//! - [`store`] keeps datasets in a SQLite catalog (one Hilbert-ordered table and one
//!   R*Tree per dataset version) behind the [`store::Catalog`] trait, and answers
//!   [`store::Query`]s;
//! - [`http`] serves the catalog as OGC API - Features (GeoJSON, HTML, CSV), turning
//!   request parameters into a `Query` at the edge;
//! - [`tiles`] is the pure, synchronous tile core: tile maths and projection, an
//!   in-memory Morton-sorted point index, grid clustering, clipping and MVT encoding.

pub mod cli;
pub mod config;
pub mod http;
pub mod ingest;
pub mod model;
pub mod render;
pub mod spatial;
pub mod store;
pub mod tiles;
