//! The `koban` binary: flags, wiring, lifecycle and subcommands.

mod backend;
mod build_info;
mod check;
mod cli;
mod components;
mod ignored;
mod pools;
mod process;
mod selfmetrics;
mod server;

use clap::Parser;
use cli::{CheckCommand, Cli, Command, CreateBlocksFrom, TsdbCommand};
use std::process::ExitCode;

/// mimalloc keeps RSS close to live data with many small, long-lived
/// allocations (series, chunks) spread over worker threads, where glibc's
/// per-thread arenas fragment. Built with `no_thp` (see the workspace
/// Cargo.toml): huge pages inflated RSS by ~25% for no CPU gain.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    if let Err(e) = cli::refuse_prometheus_only_flags(std::env::args_os()) {
        eprintln!("koban: {e}");
        return ExitCode::from(2);
    }
    let cli = Cli::parse();
    // One crypto backend for every TLS user (scrape clients, remote write, SMTP): ring.
    let _ = rustls::crypto::ring::default_provider().install_default();
    match cli.command {
        None => server::main(cli.server),
        Some(Command::Server(args)) => server::main(*args),
        Some(Command::Check {
            what: CheckCommand::Config { files },
        }) => check::check_config(&files),
        Some(Command::Check {
            what: CheckCommand::Rules { files },
        }) => check::check_rules(&files),
        Some(Command::Check {
            what: CheckCommand::Alertmanager { files },
        }) => check::check_alertmanager(&files),
        Some(Command::Promqltest { files }) => {
            ExitCode::from(koban_promql::promqltest::run_files_cli(&files).clamp(0, 255) as u8)
        }
        Some(Command::Test {
            what: cli::TestCommand::Rules(a),
        }) => {
            use std::io::IsTerminal;
            let opts = koban_rules::unittest::Options {
                run: a.run,
                diff: a.diff,
                debug: a.debug,
                ignore_unknown_fields: a.ignore_unknown_fields,
                junit: a.junit,
                color: std::io::stderr().is_terminal(),
            };
            let code = koban_rules::unittest::run_cli(
                &a.files,
                &opts,
                &mut std::io::stdout().lock(),
                &mut std::io::stderr().lock(),
            );
            ExitCode::from(code.clamp(0, 255) as u8)
        }
        Some(Command::Tsdb {
            what:
                TsdbCommand::CreateBlocksFrom {
                    from: CreateBlocksFrom::Openmetrics { input, output },
                },
        }) => check::create_blocks(&input, &output),
        Some(Command::Tsdb {
            what: TsdbCommand::Analyze { dir },
        }) => check::analyze(&dir),
    }
}
