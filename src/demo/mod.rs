//! `omnihub demo`: a complete service on one laptop with nothing to configure. It keeps its
//! own data directory (a secret key, a self-signed certificate, the SQLite database and the
//! generated logins), seeds a platform and one client on first start, and serves over HTTPS.
//!
//! Seeding happens once, keyed on the platform owner's account: the owner is created last,
//! so its presence means the rest is there too.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use omnihub_core::model::{ChannelGrant, ChannelKind, Provider};
use omnihub_core::{ChannelRights, ClientId, GlobalRights, Role};
use omnihub_store::{DynStore, NewChannel, NewUser, SecretBox, StoreError};
use rand::Rng as _;

use crate::config::{Config, Secret, TlsMode};
use crate::state::AppState;
use crate::{server, tls};
use providers::DemoProviders;

mod providers;
mod sandbox_page;
mod social;

pub const DEFAULT_DATA_DIR: &str = "./omnihub-demo";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8443";
pub const DEFAULT_REDIRECT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_SANDBOX_LISTEN: &str = "127.0.0.1:8090";

const SECRET_KEY_FILE: &str = "secret.key";
const LOGINS_FILE: &str = "logins.txt";
const PASSWORD_LEN: usize = 16;

/// Where and how the demo runs; `None` takes the defaults above.
#[derive(Clone, Debug, Default)]
pub struct DemoOptions {
    pub listen: Option<String>,
    /// An empty string disables the redirect listener.
    pub redirect_listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    /// Where the sandbox page (write as a customer) listens; empty disables it.
    pub sandbox_listen: Option<String>,
}

/// One seeded account, as printed and written to `logins.txt`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Login {
    pub role: &'static str,
    pub email: String,
    pub password: String,
}

/// The accounts the demo creates. The first is the platform owner, whose existence marks a
/// seeded store.
struct Person {
    role_label: &'static str,
    email: &'static str,
    name: &'static str,
    locale: &'static str,
}

const PEOPLE: [Person; 5] = [
    Person {
        role_label: "platform owner",
        email: "admin@omnihub.test",
        name: "Администратор",
        locale: "ru",
    },
    Person {
        role_label: "platform moderator",
        email: "moderator@omnihub.test",
        name: "Модератор",
        locale: "ru",
    },
    Person {
        role_label: "client owner (Ромашка)",
        email: "owner@romashka.test",
        name: "Ольга Владелец",
        locale: "ru",
    },
    Person {
        role_label: "employee, full rights on «Сайт»",
        email: "anna@romashka.test",
        name: "Анна Оператор",
        locale: "ru",
    },
    Person {
        role_label: "employee, read + reply on «Поддержка API»",
        email: "boris@romashka.test",
        name: "Борис Оператор",
        locale: "ru",
    },
];

/// Runs the demo until SIGINT/SIGTERM.
pub async fn run(options: DemoOptions) -> anyhow::Result<()> {
    let data_dir = options
        .data_dir
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
    let providers = Arc::new(DemoProviders::start().await?);
    let sandbox_listen = options
        .sandbox_listen
        .unwrap_or_else(|| DEFAULT_SANDBOX_LISTEN.to_string());
    if !sandbox_listen.is_empty() {
        // The demo is useful without the page: a taken port only costs the page.
        match sandbox_page::start(providers.clone(), &sandbox_listen) {
            Ok((addr, page)) => {
                println!("Sandbox page (write as a customer on any channel): http://{addr}/");
                tracing::info!(%addr, "sandbox page listening");
                tokio::spawn(page);
            }
            Err(err) => tracing::warn!(
                error = format!("{err:#}"),
                listen = %sandbox_listen,
                "no sandbox page: choose another address with --sandbox-listen"
            ),
        }
    }
    let mut config = demo_config(
        &data_dir,
        options.listen.as_deref().unwrap_or(DEFAULT_LISTEN),
        options
            .redirect_listen
            .as_deref()
            .unwrap_or(DEFAULT_REDIRECT_LISTEN),
    )?;
    config.providers = providers.config();
    config.social = providers.social_config();
    let config = Arc::new(config);
    // Made before serving so the first start reports a broken data directory early.
    tls::ensure_self_signed(&config.self_signed_dir())?;

    let store = server::open_store(&config).await?;
    let logins = seed(&store, &data_dir).await?;

    print_welcome(&config, &data_dir, &logins);
    let client = store
        .credentials_by_email(PEOPLE[2].email)
        .await?
        .user
        .client_id
        .context("the demo client's owner has no client")?;
    // The mailbox registers no webhook, so it is connected before anything reads the channels:
    // the server's pollers find it at their first look, with this start's server addresses.
    providers
        .connect_mailbox(&store, client)
        .await
        .context("connecting the demo's mailbox")?;
    let state = AppState::build(config.clone(), store.clone()).await?;
    let public_url = config.server.public_url.clone();
    let endpoints = state.endpoints.clone();
    let social_state = state.clone();
    tokio::spawn(async move {
        // The providers check the webhook address when it is registered: the server must be
        // listening by then.
        for attempt in 1..=20 {
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            match providers
                .connect(&store, client, &public_url, &endpoints)
                .await
            {
                Ok(()) => {
                    tracing::info!("demo messengers connected; customers start writing");
                    providers.clone().start_traffic();
                    if let Err(err) = providers.seed_social(&social_state, client).await {
                        tracing::error!(
                            error = format!("{err:#}"),
                            "demo social profiles not seeded"
                        );
                    }
                    return;
                }
                Err(err) if attempt == 20 => {
                    tracing::error!(error = format!("{err:#}"), "demo messengers not connected");
                }
                Err(_) => {}
            }
        }
    });
    server::run(config, state).await
}

/// The demo's configuration: defaults, HTTPS with the self-signed certificate, SQLite in the
/// data directory, and a secret key kept there. The environment does not apply: the demo must
/// not pick up a production database from `OMNIHUB_STORE_URL`.
pub fn demo_config(data_dir: &Path, listen: &str, redirect_listen: &str) -> anyhow::Result<Config> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create the demo directory {}", data_dir.display()))?;
    let listen_addr: SocketAddr = listen.parse().with_context(|| {
        format!("--listen: `{listen}` is not an address such as 127.0.0.1:8443")
    })?;

    let mut config = Config::default();
    config.server.listen = listen.to_string();
    config.server.redirect_listen = redirect_listen.to_string();
    config.server.public_url = format!("https://localhost:{}", listen_addr.port());
    config.server.data_dir = data_dir.to_path_buf();
    config.tls.mode = TlsMode::SelfSigned;
    config.security.secret_key = Secret::new(secret_key(data_dir)?);
    config.security.cookie_secure = true;
    config.validate_for_serve()?;
    Ok(config)
}

/// The demo's secret key, made on first start and kept (0600) so the store stays readable.
fn secret_key(data_dir: &Path) -> anyhow::Result<String> {
    let path = data_dir.join(SECRET_KEY_FILE);
    match std::fs::read_to_string(&path) {
        Ok(key) => Ok(key.trim().to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let (_, key) = SecretBox::generate();
            tls::write_private(&path, format!("{key}\n").as_bytes())
                .with_context(|| format!("cannot write {}", path.display()))?;
            Ok(key)
        }
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

fn generate_password() -> String {
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(PASSWORD_LEN)
        .map(char::from)
        .collect()
}

/// Seeds the store unless it already is, and returns the logins from `logins.txt`.
pub async fn seed(store: &DynStore, data_dir: &Path) -> anyhow::Result<Vec<Login>> {
    let logins_path = data_dir.join(LOGINS_FILE);
    match store.credentials_by_email(PEOPLE[0].email).await {
        Ok(_) => return read_logins(&logins_path),
        Err(StoreError::NotFound) => {}
        Err(e) => return Err(e).context("cannot read the store"),
    }

    let logins: Vec<Login> = PEOPLE
        .iter()
        .map(|p| Login {
            role: p.role_label,
            email: p.email.to_string(),
            password: generate_password(),
        })
        .collect();
    // Written before any account exists, so no account ever has a password nobody knows.
    tls::write_private(&logins_path, render_logins(&logins).as_bytes())
        .with_context(|| format!("cannot write {}", logins_path.display()))?;

    seed_accounts(store, &logins).await.with_context(|| {
        format!(
            "seeding the demo data failed part-way; delete {} and start again",
            data_dir.display()
        )
    })?;
    tracing::info!("seeded the demo platform and the client «Ромашка»");
    Ok(logins)
}

async fn seed_accounts(store: &DynStore, logins: &[Login]) -> anyhow::Result<()> {
    let user = |i: usize,
                role: Role,
                client_id: Option<ClientId>,
                rights: GlobalRights|
     -> anyhow::Result<NewUser> {
        let person = &PEOPLE[i];
        Ok(NewUser {
            email: person.email.to_string(),
            display_name: person.name.to_string(),
            password_hash: crate::auth::password::hash(&logins[i].password)?,
            role,
            client_id,
            global_rights: rights,
            locale: person.locale.to_string(),
        })
    };

    store
        .create_user(&user(
            1,
            Role::PlatformModerator,
            None,
            GlobalRights::empty(),
        )?)
        .await?;

    let client = store.create_client("Ромашка", None).await?;
    let cid = Some(client.id);
    store
        .create_user(&user(2, Role::ClientOwner, cid, GlobalRights::all())?)
        .await?;
    let anna = store
        .create_user(&user(3, Role::Employee, cid, GlobalRights::empty())?)
        .await?;
    let boris = store
        .create_user(&user(4, Role::Employee, cid, GlobalRights::empty())?)
        .await?;

    let channel = |name: &str| NewChannel {
        client_id: client.id,
        kind: ChannelKind::Messaging,
        provider: Provider::Api,
        name: name.to_string(),
        settings: serde_json::json!({}),
        credentials: None,
    };
    let site = store.create_channel(&channel("Сайт")).await?;
    let support = store.create_channel(&channel("Поддержка API")).await?;
    store
        .set_channel_grants(
            client.id,
            anna.id,
            &[ChannelGrant {
                channel_id: site.id,
                rights: ChannelRights::full(),
            }],
        )
        .await?;
    store
        .set_channel_grants(
            client.id,
            boris.id,
            &[ChannelGrant {
                channel_id: support.id,
                rights: ChannelRights::READ | ChannelRights::REPLY,
            }],
        )
        .await?;
    let group = store.create_group(client.id, "Операторы").await?;
    store
        .set_group_members(client.id, group.id, &[anna.id, boris.id])
        .await?;

    store
        .create_user(&user(0, Role::PlatformOwner, None, GlobalRights::empty())?)
        .await?;
    Ok(())
}

fn render_logins(logins: &[Login]) -> String {
    let mut out = String::from("# omnihub demo logins: role | e-mail | password\n");
    for l in logins {
        out.push_str(&format!("{} | {} | {}\n", l.role, l.email, l.password));
    }
    out
}

fn parse_logins(text: &str) -> Vec<(String, String, String)> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let mut parts = l.rsplitn(3, " | ");
            let password = parts.next()?.to_string();
            let email = parts.next()?.to_string();
            let role = parts.next()?.to_string();
            Some((role, email, password))
        })
        .collect()
}

fn read_logins(path: &Path) -> anyhow::Result<Vec<Login>> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "the demo store is seeded but its logins are unreadable; delete {} to start afresh",
            path.parent().unwrap_or(path).display()
        )
    })?;
    Ok(parse_logins(&text)
        .into_iter()
        .map(|(role, email, password)| Login {
            role: PEOPLE
                .iter()
                .find(|p| p.role_label == role)
                .map(|p| p.role_label)
                .unwrap_or("account"),
            email,
            password,
        })
        .collect())
}

fn print_welcome(config: &Config, data_dir: &Path, logins: &[Login]) {
    let width = logins.iter().map(|l| l.email.len()).max().unwrap_or(0);
    println!();
    println!("omnihub demo: {}/", config.server.public_url);
    println!("  (self-signed certificate: your browser asks once to accept it)");
    println!();
    for l in logins {
        println!("  {:<width$}  {}   {}", l.email, l.password, l.role);
    }
    println!();
    println!("  data: {} (delete it to start afresh)", data_dir.display());
    println!();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logins_round_trip_through_the_file_format() {
        let logins: Vec<Login> = PEOPLE
            .iter()
            .map(|p| Login {
                role: p.role_label,
                email: p.email.into(),
                password: generate_password(),
            })
            .collect();
        let parsed = parse_logins(&render_logins(&logins));
        assert_eq!(parsed.len(), PEOPLE.len());
        for (l, (role, email, password)) in logins.iter().zip(parsed) {
            assert_eq!(
                (l.role, l.email.as_str(), l.password.as_str()),
                (role.as_str(), email.as_str(), password.as_str())
            );
            assert_eq!(password.len(), PASSWORD_LEN);
            omnihub_core::validate::password(&password).unwrap();
        }
        for p in PEOPLE {
            omnihub_core::validate::email(p.email).unwrap();
        }
    }

    #[test]
    fn demo_config_keeps_its_secret_key_and_validates() {
        let dir = std::env::temp_dir().join(format!("omnihub-demo-{}", uuid::Uuid::new_v4()));
        let first = demo_config(&dir, "127.0.0.1:0", "").unwrap();
        let again = demo_config(&dir, "127.0.0.1:9443", DEFAULT_REDIRECT_LISTEN).unwrap();
        assert_eq!(first.security.secret_key, again.security.secret_key);
        assert_eq!(again.server.public_url, "https://localhost:9443");
        assert_eq!(
            again.store_url(),
            format!("sqlite://{}/omnihub.db", dir.display())
        );
        assert!(again.tls_enabled() && again.security.cookie_secure);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dir.join(SECRET_KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn seeding_happens_once_and_grants_what_the_logins_say() {
        let dir = std::env::temp_dir().join(format!("omnihub-demo-{}", uuid::Uuid::new_v4()));
        let config = demo_config(&dir, "127.0.0.1:0", "").unwrap();
        let store = server::open_store(&config).await.unwrap();

        let first = seed(&store, &dir).await.unwrap();
        let again = seed(&store, &dir).await.unwrap();
        assert_eq!(first, again, "a second start must reuse the logins");
        assert_eq!(first.len(), PEOPLE.len());

        for login in &first {
            let creds = store.credentials_by_email(&login.email).await.unwrap();
            assert!(crate::auth::password::verify(
                &login.password,
                &creds.password_hash
            ));
        }
        let anna = store
            .credentials_by_email("anna@romashka.test")
            .await
            .unwrap()
            .user;
        let boris = store
            .credentials_by_email("boris@romashka.test")
            .await
            .unwrap()
            .user;
        let client = anna.client_id.unwrap();
        assert_eq!(store.list_channels(client).await.unwrap().len(), 2);
        let anna_grants = store.channel_grants(client, anna.id).await.unwrap();
        assert_eq!(anna_grants.len(), 1);
        assert_eq!(anna_grants[0].rights, ChannelRights::full());
        let boris_grants = store.channel_grants(client, boris.id).await.unwrap();
        assert_eq!(
            boris_grants[0].rights,
            ChannelRights::READ | ChannelRights::REPLY
        );
        let groups = store.list_groups(client).await.unwrap();
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].member_ids.len(), 2);
        let owner = store
            .credentials_by_email(PEOPLE[0].email)
            .await
            .unwrap()
            .user;
        assert_eq!(owner.role, Role::PlatformOwner);
        drop(store);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
