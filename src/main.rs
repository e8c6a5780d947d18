use anyhow::{Context, Result};
use clap::Parser;
use tessera::cli::{self, Cli, Command};
use tessera::store::Catalog;

/// mimalloc instead of glibc malloc: a tile request makes dozens of small allocations
/// on one worker thread and hyper frees some on another; glibc's arena locks and
/// consolidation took ~10% of a loaded server's CPU (perf, bench/RESULTS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "tessera=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Import(args) => {
            let req = args.request().map_err(anyhow::Error::msg)?;
            let catalog = args.db.open()?;
            let report = cli::import_with_progress(&catalog, &req).with_context(|| {
                format!("import of `{}` failed; the catalog is unchanged", req.id)
            })?;
            print!("{}", cli::describe_report(&req.id, &report));
        }
        Command::Tile(args) => match args.run().map_err(anyhow::Error::msg)? {
            Some(text) => print!("{text}"),
            None => eprintln!("tile {} of {} is empty", args.tile, args.ids),
        },
        Command::Bake(args) => print!("{}", args.run().map_err(anyhow::Error::msg)?),
        Command::Basemap(args) => print!("{}", args.run().map_err(anyhow::Error::msg)?),
        Command::Datasets(db) => print!("{}", cli::list_datasets(&db.db)?),
        Command::Delete { id, db } => {
            let id = tessera::model::DatasetId::parse(&id).map_err(anyhow::Error::msg)?;
            if !db.open()?.delete(&id)? {
                anyhow::bail!("no dataset `{id}` in {}", db.db);
            }
        }
        Command::Serve(args) => {
            let lanes = args.lanes.config().map_err(anyhow::Error::msg)?;
            let catalog = tessera::store::open(&args.db.db, &args.db_read)?;
            let manifest = args.manifest.clone().or_else(|| {
                let default = std::path::PathBuf::from("data/tessera.toml");
                (!args.no_manifest && default.exists()).then_some(default)
            });
            if let Some(m) = &manifest {
                cli::refresh_from_manifest(&catalog, m).map_err(anyhow::Error::msg)?;
            }
            let archives = args
                .archives(manifest.as_deref())
                .map_err(anyhow::Error::msg)?;
            let basemap_style = args.basemap_style().map_err(anyhow::Error::msg)?;
            let runtime = tessera::http::lanes::runtime(&lanes)?;
            let tiles = args.tile_config();
            runtime.block_on(tessera::http::serve(
                catalog,
                args.listen,
                args.public_url,
                tiles,
                args.frame_ancestors,
                args.compress_min_bytes,
                lanes,
                &archives,
                basemap_style,
            ))?;
        }
    }
    Ok(())
}
