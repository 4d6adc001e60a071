//! The `omnihub` command line: serving, the demo, migrations, configuration tools and the
//! creation of the platform owner. It parses arguments, loads and validates the configuration,
//! starts logging and hands over to the library; errors are printed plainly with a non-zero
//! exit code.

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand};
use omnihub::config::{self, Config, LogFormat};
use omnihub::demo::{self, DemoOptions};
use omnihub::server;
use omnihub::state::AppState;
use omnihub_core::{GlobalRights, Role, validate};
use omnihub_store::{NewUser, StoreError};

/// Exit code for a configuration that does not pass `config check`.
const EXIT_INVALID_CONFIG: u8 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "omnihub",
    version,
    about = "One realtime inbox for every messenger, e-mail and website chat"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Args)]
struct ConfigArg {
    /// Configuration file (TOML); without it, defaults plus OMNIHUB_* environment variables.
    #[arg(long, short, value_name = "FILE", env = "OMNIHUB_CONFIG")]
    config: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the application (production).
    Serve {
        #[command(flatten)]
        config: ConfigArg,
        /// Overrides server.listen.
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
        /// Overrides server.data_dir.
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Start a self-contained demo: SQLite, a self-signed certificate and seeded accounts.
    Demo {
        /// HTTPS address [default: 127.0.0.1:8443].
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
        /// Plain-HTTP redirect address; empty disables it [default: 127.0.0.1:8080].
        #[arg(long, value_name = "ADDR")]
        redirect_listen: Option<String>,
        /// Data directory [default: ./omnihub-demo].
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
        /// Address of the sandbox page, where you write as a customer on any channel; empty
        /// disables it [default: 127.0.0.1:8090].
        #[arg(long, value_name = "ADDR")]
        sandbox_listen: Option<String>,
    },
    /// Apply pending database migrations and exit.
    Migrate {
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Configuration tools.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Create the platform owner account. The password is read from the first line of stdin,
    /// or from OMNIHUB_OWNER_PASSWORD when set.
    CreateOwner {
        #[command(flatten)]
        config: ConfigArg,
        /// E-mail address to sign in with.
        #[arg(long, value_name = "EMAIL")]
        email: String,
        /// Display name.
        #[arg(long, value_name = "NAME", default_value = "Platform owner")]
        name: String,
    },
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Print the documented default configuration.
    Default,
    /// Validate a configuration and print it as it takes effect (secrets as ***).
    Check {
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Print a fresh secret key for security.secret_key.
    GenKey,
}

fn main() -> ExitCode {
    // ring and aws-lc-rs both end up linked (through dependencies); choose one for the process
    // so no library has to guess. Failure means one was already installed, which is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();

    let cli = Cli::parse();
    match run(cli.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Config(ConfigCommand::Default) => {
            print!("{}", Config::default_toml());
            Ok(ExitCode::SUCCESS)
        }
        Command::Config(ConfigCommand::GenKey) => {
            let (_, key) = omnihub_store::SecretBox::generate();
            println!("{key}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Config(ConfigCommand::Check { config }) => Ok(check(config.config.as_deref())),
        Command::Serve {
            config,
            listen,
            data_dir,
        } => {
            let mut config = Config::load(config.config.as_deref())?;
            if let Some(listen) = listen {
                config.server.listen = listen;
            }
            if let Some(dir) = data_dir {
                config.server.data_dir = dir;
            }
            config.validate_for_serve()?;
            init_tracing(&config.log)?;
            runtime()?.block_on(serve(Arc::new(config)))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo {
            listen,
            redirect_listen,
            data_dir,
            sandbox_listen,
        } => {
            init_tracing(&config::LogConfig::default())?;
            runtime()?.block_on(demo::run(DemoOptions {
                listen,
                redirect_listen,
                data_dir,
                sandbox_listen,
            }))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Migrate { config } => {
            let config = load_valid(config.config.as_deref())?;
            init_tracing(&config.log)?;
            runtime()?.block_on(async {
                let store = server::open_store(&config).await?;
                println!("{} store is up to date", store.engine());
                anyhow::Ok(())
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::CreateOwner {
            config,
            email,
            name,
        } => {
            let config = load_valid(config.config.as_deref())?;
            init_tracing(&config.log)?;
            let email = validate::email(&email)?;
            let name = validate::text("name", &name, 100)?;
            let password = read_password()?;
            validate::password(&password)?;
            runtime()?.block_on(create_owner(&config, email, name, &password))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn load_valid(path: Option<&Path>) -> anyhow::Result<Config> {
    let config = Config::load(path)?;
    config.validate()?;
    Ok(config)
}

fn check(path: Option<&Path>) -> ExitCode {
    let config = Config::load(path).and_then(|c| c.validate_for_serve().map(|()| c));
    match config {
        Ok(config) => {
            println!("ok");
            print!("{}", config.to_toml());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_INVALID_CONFIG)
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

async fn serve(config: Arc<Config>) -> anyhow::Result<()> {
    let store = server::open_store(&config).await?;
    let state = AppState::build(config.clone(), store).await?;
    server::run(config, state).await
}

/// Logs go to stderr so command output on stdout stays clean.
fn init_tracing(log: &config::LogConfig) -> anyhow::Result<()> {
    let filter = match std::env::var("OMNIHUB_LOG") {
        Ok(f) if !f.trim().is_empty() => tracing_subscriber::EnvFilter::try_new(&f)
            .map_err(|e| anyhow::anyhow!("OMNIHUB_LOG: `{f}` is not a log filter: {e}"))?,
        _ => tracing_subscriber::EnvFilter::try_new(&log.level)
            .map_err(|e| anyhow::anyhow!("log.level: `{}` is not a log filter: {e}", log.level))?,
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let installed = match log.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    installed.map_err(|e| anyhow::anyhow!("cannot start logging: {e}"))
}

/// The owner's password, never from argv: OMNIHUB_OWNER_PASSWORD, else the first line of stdin.
fn read_password() -> anyhow::Result<String> {
    if let Ok(p) = std::env::var("OMNIHUB_OWNER_PASSWORD") {
        return Ok(p);
    }
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("Password for the platform owner (shown as typed): ");
        std::io::stderr().flush().ok();
    }
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .context("cannot read the password from stdin")?;
    let password = line.trim_end_matches(['\r', '\n']).to_string();
    if password.is_empty() {
        bail!("no password: pipe it on stdin or set OMNIHUB_OWNER_PASSWORD");
    }
    Ok(password)
}

/// Creates the platform owner from already validated input.
async fn create_owner(
    config: &Config,
    email: String,
    name: String,
    password: &str,
) -> anyhow::Result<()> {
    let store = server::open_store(config).await?;
    match store.credentials_by_email(&email).await {
        Ok(_) => bail!("a user with the e-mail {email} already exists"),
        Err(StoreError::NotFound) => {}
        Err(e) => return Err(e).context("cannot read the store"),
    }
    let user = NewUser {
        email: email.clone(),
        display_name: name,
        password_hash: omnihub::auth::password::hash(password)?,
        role: Role::PlatformOwner,
        client_id: None,
        global_rights: GlobalRights::empty(),
        locale: "ru".into(),
    };
    let user = match store.create_user(&user).await {
        Ok(user) => user,
        Err(StoreError::Conflict(_)) => bail!("a user with the e-mail {email} already exists"),
        Err(e) => return Err(e).context("cannot create the user"),
    };
    println!("created the platform owner {} ({})", user.email, user.id);
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    #[test]
    fn cli_is_well_formed() {
        super::Cli::command().debug_assert();
    }
}
