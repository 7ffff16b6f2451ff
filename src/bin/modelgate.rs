//! `modelgate`: the gateway's command line, a thin adapter from the CLI to the library.
//!
//! - `modelgate serve --config FILE [--simulator]` serves the router in OpenAI's format;
//! - `modelgate check --config FILE` validates a config and prints its routes;
//! - `modelgate chat --config FILE -m ROUTE "prompt" [--simulator]` streams one answer;
//! - `modelgate simulate` serves the built-in simulator standalone.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use futures::StreamExt;
use modelgate::config::{BuildOptions, GatewayConfig};
use modelgate::server::{Gateway, GatewayKey};
use modelgate::simulator::{Simulator, Wire};
use modelgate::{ChatProvider, ChatRequest, Delta};

#[derive(Parser)]
#[command(
    name = "modelgate",
    version,
    about = "One OpenAI-compatible endpoint for every LLM provider"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serves the config's router over HTTP in OpenAI's format.
    Serve {
        /// The gateway config (TOML, or JSON).
        #[arg(long)]
        config: std::path::PathBuf,
        /// Points every provider whose key is missing at the built-in simulator.
        #[arg(long)]
        simulator: bool,
    },
    /// Validates a config and prints its routes, targets and policies.
    Check {
        /// The gateway config.
        #[arg(long)]
        config: std::path::PathBuf,
    },
    /// Streams one answer to the terminal, with the provider, tokens and cost at the end.
    Chat {
        /// The gateway config.
        #[arg(long)]
        config: std::path::PathBuf,
        /// The route (or model) to ask.
        #[arg(short = 'm', long = "model")]
        route: String,
        /// Points every provider whose key is missing at the built-in simulator.
        #[arg(long)]
        simulator: bool,
        /// The prompt.
        prompt: String,
    },
    /// Serves the built-in simulator standalone until Ctrl-C.
    Simulate,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("modelgate: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("modelgate: {e}");
            ExitCode::from(2)
        }
    }
}

async fn run(command: Command) -> Result<(), modelgate::Error> {
    match command {
        Command::Check { config } => {
            let config = GatewayConfig::load(&config)?;
            print!("{}", config.describe());
            Ok(())
        }
        Command::Simulate => {
            let sim = Simulator::start().await.map_err(io)?;
            println!("modelgate simulator listening on http://{}", sim.addr());
            for wire in [Wire::OpenAi, Wire::DeepSeek, Wire::Anthropic, Wire::Gemini] {
                println!("  {wire:?}: {}", sim.base_url(wire));
            }
            shutdown_signal().await;
            Ok(())
        }
        Command::Chat {
            config,
            route,
            simulator,
            prompt,
        } => {
            let config = GatewayConfig::load(&config)?;
            let (router, _sim) = build(&config, simulator).await?;
            let mut stream = router
                .chat_stream(&ChatRequest::new(route).user(prompt))
                .await?;
            let mut usage = None;
            while let Some(delta) = stream.next().await {
                match delta? {
                    Delta::Text(t) => print!("{t}"),
                    Delta::Usage(u) => usage = Some(u),
                    _ => {}
                }
            }
            println!();
            let tokens = usage.map_or_else(
                || "tokens unknown".to_owned(),
                |u| format!("{} tokens in, {} out", u.input_tokens, u.output_tokens),
            );
            let cost = stream
                .cost()
                .map_or_else(|| "cost unknown".to_owned(), |c| format!("${c:.6}"));
            eprintln!(
                "[{}/{} · {tokens} · {cost}]",
                stream.provider(),
                stream.model()
            );
            drop(stream);
            // The stream's cost settles in the background: record it before exiting.
            router.flush().await
        }
        Command::Serve { config, simulator } => {
            let config = GatewayConfig::load(&config)?;
            let (router, _sim) = build(&config, simulator).await?;
            let mut keys = Vec::new();
            for k in &config.keys {
                let key = match config.key_source(&k.key).key().await {
                    Ok(key) => key,
                    // A try-out on the simulator runs without the keys it cannot read.
                    Err(e) if simulator => {
                        eprintln!(
                            "modelgate: gateway key `{}` left out: {}",
                            k.name,
                            e.message()
                        );
                        continue;
                    }
                    Err(e) => {
                        return Err(modelgate::Error::new(
                            modelgate::ErrorKind::Config,
                            format!("{}: keys.{}: {}", config.file_name(), k.name, e.message()),
                        ));
                    }
                };
                let mut gateway_key = GatewayKey::new(k.name.clone(), key);
                if let Some(routes) = &k.routes {
                    gateway_key = gateway_key.routes(routes.clone());
                }
                keys.push(gateway_key);
            }
            let listen = config.server.listen;
            if keys.is_empty() && !listen.ip().is_loopback() {
                return Err(modelgate::Error::new(
                    modelgate::ErrorKind::Config,
                    format!(
                        "{}: server.listen: without gateway keys ([[keys]]) the server listens on loopback only, not {listen}",
                        config.file_name()
                    ),
                ));
            }
            let handle = modelgate::server::prometheus_builder()
                .install_recorder()
                .map_err(|e| {
                    modelgate::Error::new(
                        modelgate::ErrorKind::Config,
                        format!("cannot install the metrics recorder: {e}"),
                    )
                })?;
            // The recorder's upkeep: histogram samples drained and old buckets rotated even
            // when nobody scrapes.
            let upkeep = handle.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
                loop {
                    tick.tick().await;
                    upkeep.run_upkeep();
                }
            });
            let flush_on_exit = router.clone();
            let gateway = Gateway::new(router)
                .metrics(handle)
                .keys(keys)
                .max_body(usize::try_from(config.server.max_body).unwrap_or(usize::MAX))
                .max_concurrent(config.server.max_concurrent)
                .timeout(config.server.timeout);
            let no_keys = !gateway.has_keys();
            let listener = tokio::net::TcpListener::bind(listen).await.map_err(io)?;
            let addr = listener.local_addr().map_err(io)?;
            println!("modelgate listening on http://{addr}");
            if no_keys {
                eprintln!(
                    "modelgate: no gateway keys configured: serving loopback only, without authentication"
                );
            }
            modelgate::server::serve(
                listener,
                gateway.into_app(),
                shutdown_signal(),
                config.server.timeout,
            )
            .await
            .map_err(io)?;
            // The last requests' costs settle in the background: record them before exiting.
            flush_on_exit.flush().await
        }
    }
}

/// The config's router, on the state store `[state]` names (connected first; the store logs
/// its Redis host, port and prefix); with `simulator`, providers without a key go to a
/// simulator started here (and the command says which).
async fn build(
    config: &GatewayConfig,
    simulator: bool,
) -> Result<(modelgate::router::Router, Option<Simulator>), modelgate::Error> {
    let mut options = BuildOptions::default();
    options.state_store = config.connect_state_store().await?;
    let sim = if simulator {
        let sim = Simulator::start().await.map_err(io)?;
        options.simulator = Some(sim.clone());
        Some(sim)
    } else {
        None
    };
    let built = config.build_router(&options)?;
    for name in &built.simulated {
        eprintln!("modelgate: provider `{name}` has no key: using the built-in simulator");
    }
    Ok((built.router, sim))
}

fn io(e: std::io::Error) -> modelgate::Error {
    modelgate::Error::new(modelgate::ErrorKind::Network, e.to_string())
}

/// Ctrl-C, or SIGTERM on Unix.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
