//! `prefscope`: the native command-line tool. It holds no math of its own; every number comes
//! from prefscope-core, prefscope-gpu and prefscope-clip.

mod clip;
mod convert;
mod demo;
mod device;
mod diversity;
mod dpo;
mod groups;
mod output;
mod pairs;
mod quantize;
mod strength;

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
    /// L2-normalised text and image embeddings from a CLIP-family model.
    Embed(clip::EmbedArgs),
    /// Scores a manifest of prompts and images: preset score, LongAlign parts, softmax and
    /// rank within each group.
    Score(clip::ScoreArgs),
    /// PickScore's evaluation of labelled image pairs: probabilities, accuracy with ties, agreement.
    Pairs(pairs::PairsArgs),
    /// Preference strength from an ensemble of reward models: each pair's mean and spread of
    /// reward differences, and its band (likely_wrong, ambiguous, clear, strongest).
    Strength(strength::StrengthArgs),
    /// How much of an image set's diversity its prompts explain (Schur complement entropy),
    /// over the whole set and each group.
    Diversity(diversity::DiversityArgs),
    /// Annotator groups from labelled pairs with user ids: a mixture of Bradley–Terry models
    /// (MaxMin-RLHF's EM), each user's group, and accuracy against one model for everyone.
    Groups(groups::GroupsArgs),
    /// Runs the bundled demo data end to end and prints what it finds.
    Demo(demo::DemoArgs),
    /// Rewrites a model directory with its matrices in int8 (`q8`) or `f16`: a quarter or half
    /// of the download, read by every loader.
    Quantize(quantize::QuantizeArgs),
    /// Writes a PyTorch checkpoint of an open_clip model (HPS v2 / v2.1's `.pt`) as an open_clip
    /// model directory: the base model's config and tokenizer beside open_clip_model.safetensors.
    /// The pickle is read without running it; every tensor is checked against the base's config.
    Convert(convert::ConvertArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Dpo(args) => dpo::run(&args),
        Command::Embed(args) => clip::embed(&args),
        Command::Score(args) => clip::run_score(&args),
        Command::Pairs(args) => pairs::run(&args),
        Command::Strength(args) => strength::run(&args),
        Command::Diversity(args) => diversity::run(&args),
        Command::Groups(args) => groups::run(&args),
        Command::Demo(args) => demo::run(&args),
        Command::Quantize(args) => quantize::run(&args),
        Command::Convert(args) => convert::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
