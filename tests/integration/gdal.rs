//! Interoperability with GDAL's OGC API - Features client (`ogrinfo`, driver OAPIF).

use crate::support::*;

fn feature_count(summary: &str) -> u64 {
    summary
        .lines()
        .find_map(|l| l.trim().strip_prefix("Feature Count:"))
        .unwrap_or_else(|| panic!("no Feature Count in {summary}"))
        .trim()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gdal_ogrinfo_reads_the_server() {
    if !ogrinfo_available("gdal_ogrinfo_reads_the_server") {
        return;
    }
    let s = Server::with_fixture("uk", "uk-crime-sample.csv").await;
    let url = format!("OAPIF:http://127.0.0.1:{}", s.port);

    let summary = ogrinfo(vec!["-ro".into(), "-so".into(), url.clone(), "uk".into()]).await;
    let all = number_matched(&s.items("uk", &[]).await);
    assert_eq!(all, 200);
    assert_eq!(feature_count(&summary), all, "{summary}");
    assert!(summary.contains("Layer name: uk"), "{summary}");
    let info = s.data.info("uk").unwrap();
    for f in &info.fields {
        assert!(
            summary
                .lines()
                .any(|l| l.starts_with(&format!("{}: ", f.name))),
            "field `{}` not listed: {summary}",
            f.name
        );
    }

    // A bbox, with a page size that forces paging where the bbox holds more than one page.
    for bbox in [["-2.7", "51.4", "-2.5", "51.5"], ["-3", "51", "0", "53"]] {
        let mut args: Vec<String> = vec!["-ro".into(), url.clone(), "uk".into(), "-spat".into()];
        args.extend(bbox.iter().map(|v| v.to_string()));
        args.extend(["-oo".into(), "PAGE_SIZE=7".into()]);
        let listing = ogrinfo(args).await;
        let listed = listing
            .lines()
            .filter(|l| l.starts_with("OGRFeature(uk):"))
            .count() as u64;
        let fc = s.items("uk", &[("bbox", &bbox.join(","))]).await;
        let matched = number_matched(&fc);
        assert!(matched > 0);
        assert_eq!(listed, matched, "bbox {bbox:?}: {listing}");
    }
}
