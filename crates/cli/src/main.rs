//! `prefscope`: the native command-line tool. It holds no math of its own; every number comes
//! from prefscope-core (and, as they land, the GPU and CLIP crates).

mod demo;
mod dpo;
mod output;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "prefscope", version, about = "Score images against prompts and inspect preference alignment")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// DPO-family rewards, margins, losses and metrics from exported log-probabilities.
    Dpo(dpo::DpoArgs),
    /// Runs the bundled demo data end to end and prints what it finds.
    Demo(demo::DemoArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Dpo(args) => dpo::run(&args),
        Command::Demo(args) => demo::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
