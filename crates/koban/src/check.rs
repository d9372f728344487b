//! `koban check config`, `koban check rules`, `koban check alertmanager` and the TSDB tools.

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
                    let mut errors = Vec::new();
                    let rule_files = koban_rules::load::expand(&cfg.rule_files, &mut errors);
                    // As promtool: a literal path that does not exist fails.
                    let missing: Vec<&String> = cfg
                        .rule_files
                        .iter()
                        .filter(|p| !p.contains(['*', '?', '[']) && !Path::new(p).exists())
                        .collect();
                    if !missing.is_empty() || !errors.is_empty() {
                        failed = true;
                        for m in missing {
                            println!("  FAILED: {m:?} does not point to an existing file");
                        }
                        for e in errors {
                            println!("  FAILED: {e}");
                        }
                        continue;
                    }
                    println!(
                        "  SUCCESS: {} scrape jobs, {} static targets, {} rule files found",
                        pools.len(),
                        static_targets,
                        rule_files.len()
                    );
                    println!();
                    for rf in rule_files {
                        failed |= !check_rule_file(&rf);
                    }
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

/// `koban check rules FILE...`, as `promtool check rules`: per file
/// `Checking FILE`, then `  SUCCESS: N rules found` or `  FAILED:` and
/// every error (`file:line:col: message`) on stderr, then a blank line.
/// Exit 1 when any file fails; a file that does not exist fails before any
/// is checked.
pub fn check_rules(files: &[PathBuf]) -> ExitCode {
    if let Some(f) = files.iter().find(|f| !f.exists()) {
        eprintln!("koban: error: path '{}' does not exist", f.display());
        return ExitCode::FAILURE;
    }
    let mut ok = true;
    for f in files {
        ok &= check_rule_file(f);
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Checks one rule file with promtool's output; true when it is valid.
fn check_rule_file(f: &Path) -> bool {
    println!("Checking {}", f.display());
    let ok = match koban_rules::load_file(f) {
        Ok(groups) => {
            let n: usize = groups.iter().map(|g| g.rules.len()).sum();
            println!("  SUCCESS: {n} rules found");
            true
        }
        Err(e) => {
            eprintln!("  FAILED:");
            for e in &e.errors {
                eprintln!("{e}");
            }
            false
        }
    };
    println!();
    ok
}

/// `koban check alertmanager FILE...`, as `amtool check-config`: per file
/// `Checking 'FILE'  SUCCESS` and what was found (global config, route,
/// inhibit rules, receivers, templates), or `Checking 'FILE'  FAILED:` and
/// the error (`file:line:col: message`), then a blank line. Exit 1 when any
/// file fails (with `koban: error: failed to validate N file(s)` on
/// stderr); a file that does not exist fails before any is checked.
pub fn check_alertmanager(files: &[PathBuf]) -> ExitCode {
    if let Some(f) = files.iter().find(|f| !f.exists()) {
        eprintln!("koban: error: path '{}' does not exist", f.display());
        return ExitCode::FAILURE;
    }
    let mut failed = 0;
    for f in files {
        print!("Checking '{}'", f.display());
        match koban_config::alertmanager::load_file(f) {
            Ok(cfg) => {
                println!("  SUCCESS");
                println!("Found:");
                println!(" - global config");
                if cfg.route.is_some() {
                    println!(" - route");
                }
                println!(" - {} inhibit rules", cfg.inhibit_rules.len());
                println!(" - {} receivers", cfg.receivers.len());
                println!(" - {} templates", cfg.templates.len());
                if !cfg.templates.is_empty() {
                    println!("  SUCCESS");
                }
            }
            Err(e) => {
                failed += 1;
                println!("  FAILED: {e}");
            }
        }
        println!();
    }
    if failed > 0 {
        eprintln!("koban: error: failed to validate {failed} file(s)");
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
