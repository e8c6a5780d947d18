//! Tessera: a map tile and feature server for open government data.
//!
//! Data flows one way through the modules:
//! - [`model`] holds what every layer shares: dataset ids and metadata, values, bounds,
//!   and time ([`model::time`]: parsing and formatting of every date form we read);
//! - [`ingest`] reads CSV and GeoJSON files into records (position or a
//!   [`geo_types`] shape, raw text values, time), streaming and with file + line on
//!   every error;
//! - [`import`] is the backend-neutral import pipeline: type inference, the time column,
//!   the error budget and the report, rows in Hilbert order (spilled to sorted runs on
//!   disk past a memory budget), handed to a [`store::DatasetWriter`] that commits them
//!   as one new version. **A new backend** implements that writer plus the read traits
//!   [`store::Catalog`] and [`store::Snapshot`] and reuses all the rest;
//! - [`store`] is the catalog behind those traits. Geometry crosses them as
//!   [`geo_types`] values (stored as WKB, [`store::wkb`]); internal keys are any `i64`.
//!   [`store::sqlite`] is today's backend (one Hilbert-ordered table and one R*Tree per
//!   dataset version); nothing above `store` names SQLite;
//! - [`query`] turns request parameters (of a URL or the command line) into a validated
//!   [`store::Query`], once, for items, exports, histograms, tiles and bakes alike; its
//!   errors name the parameter;
//! - [`tiles`] is the pure, synchronous tile core: tile maths and projection, an
//!   in-memory Morton-sorted point index, grid clustering, clipping and MVT encoding;
//! - [`render`] joins store and tile core behind one trait, [`render::source::TileSource`]
//!   (TileJSON + `tile(coord, query) -> Tile { bytes, format, encoding }`):
//!   catalog datasets drawn on the fly ([`render::catalog`]) and PMTiles/MBTiles archives
//!   served as stored ([`render::archive`]). **A new tile source** (rasters, another
//!   archive format) is one more implementation; the byte-weighted cache holds `Bytes`;
//! - [`aggregate`] counts features into the polygons of a boundary dataset (an R-tree
//!   and point-in-polygon over areas, kept per version beside the point index);
//! - [`dashboard`] computes a dataset's dashboard numbers (period totals, change on the
//!   previous period, series, top categories) through the same `Query`, and draws its
//!   time series as SVG;
//! - [`copy`] moves datasets between two catalogs of any backends through the store
//!   traits alone (`tessera copy`), streaming, checked by counts;
//! - [`bake`] renders datasets with the same renderer into PMTiles or MBTiles archives;
//! - [`http`] is the edge: OGC API - Features with one `FeatureWriter` per output format
//!   (GeoJSON, CSV, HTML, iCalendar: **a new format** is one file in `http/formats/`), tiles and
//!   TileJSON through `TileSource`, styles, map pages and static assets; one extractor
//!   reads what collection handlers share, and [`http::error::ApiError`] is the one
//!   error that becomes a response (a `QueryError` becomes a 400 there);
//! - [`cli`] and [`config`] are what a user types and the catalog manifest; the CLI
//!   uses `query`, `import`, `store`, `render` and `bake`, and `http` only to serve.

pub mod aggregate;
pub mod bake;
pub mod basemap;
pub mod cli;
pub mod config;
pub mod copy;
pub mod dashboard;
pub mod geometry;
pub mod http;
pub mod import;
pub mod ingest;
pub mod model;
pub mod picture;
pub mod query;
pub mod render;
pub mod spatial;
pub mod store;
pub mod tiles;
