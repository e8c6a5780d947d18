//! Where a catalog lives, as given on the command line (`--db`): a SQLite file path or a
//! `postgresql://` URL. Parsed once at the edge; [`open`] is the one place that turns a
//! location into a [`Catalog`], so nothing above `store/` picks a backend itself.

use super::{Catalog, StoreError};
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbLocation {
    /// A SQLite catalog file (created if missing).
    Sqlite(PathBuf),
    /// A PostgreSQL + PostGIS database, as a libpq connection URL.
    Postgres(String),
}

impl DbLocation {
    /// `postgres://` and `postgresql://` URLs name PostgreSQL; anything else is a path.
    pub fn parse(text: &str) -> Self {
        let lower = text.get(..13).unwrap_or(text).to_ascii_lowercase();
        if lower.starts_with("postgresql://") || lower.starts_with("postgres://") {
            DbLocation::Postgres(text.to_owned())
        } else {
            DbLocation::Sqlite(PathBuf::from(text))
        }
    }

    /// The location for messages: a path as it is, a URL without its password.
    pub fn display(&self) -> String {
        match self {
            DbLocation::Sqlite(p) => p.display().to_string(),
            DbLocation::Postgres(url) => redact(url),
        }
    }

    /// Whether the catalog exists already (a PostgreSQL database is assumed to).
    pub fn exists(&self) -> bool {
        match self {
            DbLocation::Sqlite(p) => p.exists(),
            DbLocation::Postgres(_) => true,
        }
    }
}

impl std::str::FromStr for DbLocation {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(DbLocation::parse(s))
    }
}

impl std::fmt::Display for DbLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.display())
    }
}

/// A connection URL with any password replaced by `***`, for logs and `/health`.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, tail) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((user, host)) => match user.split_once(':') {
            Some((name, _)) => format!("{scheme}://{name}:***@{host}{tail}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// Opens the catalog at `location`; `read` are read replicas (PostgreSQL only) that take
/// the reads while the primary takes writes and version checks.
pub fn open(location: &DbLocation, read: &[String]) -> Result<Box<dyn Catalog>, StoreError> {
    match location {
        DbLocation::Sqlite(path) => {
            if !read.is_empty() {
                return Err(StoreError::Config(
                    "--db-read needs a PostgreSQL --db; a SQLite catalog has no replicas".into(),
                ));
            }
            Ok(Box::new(super::sqlite::SqliteCatalog::open(path)?))
        }
        DbLocation::Postgres(url) => Ok(Box::new(super::postgres::PgCatalog::open(url, read)?)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_postgres_and_everything_else_is_a_path() {
        assert_eq!(
            DbLocation::parse("postgresql://u@h/db"),
            DbLocation::Postgres("postgresql://u@h/db".into())
        );
        assert_eq!(
            DbLocation::parse("POSTGRES://h/db"),
            DbLocation::Postgres("POSTGRES://h/db".into())
        );
        assert_eq!(
            DbLocation::parse("data/tessera.db"),
            DbLocation::Sqlite("data/tessera.db".into())
        );
        // A file whose name merely mentions postgres is still a file.
        assert_eq!(
            DbLocation::parse("postgres.db"),
            DbLocation::Sqlite("postgres.db".into())
        );
    }

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(
            redact("postgresql://tessera:s3cr%40t@db.internal:5432/opendata?sslmode=disable"),
            "postgresql://tessera:***@db.internal:5432/opendata?sslmode=disable"
        );
        assert_eq!(
            redact("postgresql://tessera@db/x"),
            "postgresql://tessera@db/x"
        );
        assert_eq!(redact("postgresql://db/x"), "postgresql://db/x");
    }
}
