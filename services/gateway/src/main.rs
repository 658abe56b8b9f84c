//! `ichigen`: see `ichigen --help` and README.md.

use clap::Parser;
use ichigen_gateway::auth::JwtAuth;
use ichigen_gateway::cli::{Cli, Command};
use ichigen_gateway::serve;
use ichigen_shared::auth::Role;
use ichigen_shared::config::Settings;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            // One clear line, never a panic: bad config, unreachable store, locked data...
            eprintln!("ichigen: error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn load_settings(cli: &Cli) -> Result<Settings, String> {
    let default_file = std::path::Path::new("ichigen.toml");
    let file = match &cli.config {
        Some(path) => Some(path.as_path()),
        None if default_file.exists() => Some(default_file),
        None => None,
    };
    Settings::load(file).map_err(|e| e.to_string())
}

fn run(cli: Cli) -> Result<(), String> {
    match &cli.command {
        Command::Schema => {
            print!("{}", ichigen_gateway::graphql::sdl());
            Ok(())
        }
        Command::Token {
            role,
            store,
            sub,
            ttl_hours,
        } => {
            let settings = load_settings(&cli)?;
            let role: Role = role.parse().map_err(|e| format!("{e}"))?;
            let token = JwtAuth::new(&settings.auth.secret)
                .mint(
                    role,
                    sub,
                    store.as_deref(),
                    chrono::Duration::hours(*ttl_hours),
                )
                .map_err(|e| e.to_string())?;
            println!("{token}");
            Ok(())
        }
        Command::Serve { target, bind, demo } => {
            let mut settings = load_settings(&cli)?;
            if let Some(bind) = bind {
                settings.http.bind = bind.clone();
            }
            if *demo {
                settings.demo.seed = true;
            }
            ichigen_shared::telemetry::init_tracing(&settings.log.format, &settings.log.filter)
                .map_err(|e| e.to_string())?;
            serve::run(settings, *target)
        }
    }
}
