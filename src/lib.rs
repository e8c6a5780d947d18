//! Tessera: a map tile and feature server for open government data.
//!
//! Data flows one way through the modules:
//! - [`ingest`] reads CSV and GeoJSON files into records (position, typed-later text
//!   values, time), streaming and with file + line on every error;
//! - [`import`] is the backend-neutral import pipeline: type inference, the time column,
//!   the error budget and the report, rows in Hilbert order (spilled to sorted runs on
//!   disk past a memory budget), handed to a [`store::DatasetWriter`] that commits them
//!   as one new version (a new backend implements that writer and reuses all the rest);
//! - [`store`] keeps datasets in a SQLite catalog (one Hilbert-ordered table and one
//!   R*Tree per dataset version) behind the [`store::Catalog`] trait, and answers
//!   [`store::Query`]s;
//! - [`tiles`] is the pure, synchronous tile core: tile maths and projection, an
//!   in-memory Morton-sorted point index, grid clustering, clipping and MVT encoding;
//! - [`render`] joins the two: point indexes per dataset version, layers per request,
//!   a byte-bounded tile cache, and tiles as text for `tessera tile`;
//! - [`query`] turns request parameters (of a URL or the command line) into a validated
//!   [`store::Query`], once, for items, exports, histograms and tiles alike; its errors
//!   name the parameter;
//! - [`http`] is the edge: OGC API - Features (GeoJSON, HTML, CSV: one `FeatureWriter`
//!   each), vector tiles with TileJSON, styles, map pages and static assets; one
//!   extractor reads what collection handlers share, and [`http::error::ApiError`] is
//!   the one error that becomes a response (a `QueryError` becomes a 400 there);
//! - [`bake`] renders datasets with the same renderer into PMTiles or MBTiles archives;
//! - [`cli`] and [`config`] are what a user types and the catalog manifest.

pub mod bake;
pub mod cli;
pub mod config;
pub mod geometry;
pub mod http;
pub mod import;
pub mod ingest;
pub mod model;
pub mod query;
pub mod render;
pub mod spatial;
pub mod store;
pub mod tiles;
