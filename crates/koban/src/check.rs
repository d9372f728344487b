//! `koban check config` and the TSDB tools.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Checks each file; prints every error with its location or a summary.
pub fn check_config(files: &[PathBuf]) -> ExitCode {
    let mut failed = false;
    for f in files {
        println!("Checking {}", f.display());
        match koban_config::load_file(f) {
            // Building each job's HTTP client reads its TLS files, as the
            // server does at load: a missing or bad certificate fails here.
            Ok(cfg) => match crate::pools::pool_configs(&cfg).and_then(|pools| {
                for p in &pools {
                    koban_scrape::client::build(&p.job_name, &p.http, p.timeout)?;
                }
                Ok(pools)
            }) {
                Ok(pools) => {
                    for w in crate::ignored::warnings(&cfg) {
                        println!("  WARNING: {w}");
                    }
                    let static_targets: usize = cfg
                        .scrape_configs
                        .iter()
                        .flat_map(|s| s.static_configs.iter())
                        .map(|s| s.targets.len())
                        .sum();
                    println!(
                        "  SUCCESS: {} scrape jobs, {} static targets, {} rule files found",
                        pools.len(),
                        static_targets,
                        cfg.rule_files.len()
                    );
                }
                Err(e) => {
                    failed = true;
                    println!("  FAILED: {}: {e:#}", f.display());
                }
            },
            Err(e) => {
                failed = true;
                println!("  FAILED: {e}");
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// `koban tsdb create-blocks-from openmetrics INPUT OUTPUT`.
pub fn create_blocks(input: &Path, output: &Path) -> ExitCode {
    use std::io::IsTerminal;
    let tty = std::io::stderr().is_terminal();
    let mut last_pct = u64::MAX;
    let res = koban_tsdb::backfill::create_blocks_from_openmetrics(input, output, |done, total| {
        if tty && total > 0 {
            let pct = done * 100 / total;
            if pct != last_pct {
                last_pct = pct;
                eprint!("\rimporting {}: {pct:3}%", input.display());
            }
        }
    });
    if tty {
        eprintln!();
    }
    match res {
        Ok(stats) => {
            println!(
                "imported {} samples of {} series into {} block(s) in {}",
                stats.samples,
                stats.series,
                stats.blocks.len(),
                output.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `koban tsdb analyze DIR`: the newest block of a data directory, or one block.
pub fn analyze(dir: &Path) -> ExitCode {
    match koban_tsdb::analyze::analyze(dir) {
        Ok(report) => {
            // A closed pipe (`| head`) is not an error worth a panic.
            use std::io::Write;
            let _ = write!(std::io::stdout(), "{report}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
