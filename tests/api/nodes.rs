//! Real `omnihub serve` processes, for what only processes can show:
//!
//! - `kill -9` right after a webhook's 200 loses nothing (SQLite in the data directory): the
//!   message is there exactly once after a restart, and a retry of the event is a duplicate;
//! - two processes on one PostgreSQL database (a fresh database per test, made through
//!   `OMNIHUB_TEST_POSTGRES_URL` and dropped afterwards; skipped when it is unset):
//!   - a message arriving at node A reaches an operator socket on node B (LISTEN/NOTIFY), and
//!     the other way round; so do an operator's typing and presence;
//!   - two operators taking one conversation at once through different nodes: exactly one
//!     wins, and the conversation is the winner's;
//!   - snoozed conversations, snoozed through alternating nodes, each wake up exactly once
//!     (one claim of each durable task, one reopening per conversation);
//!   - long-polled Telegram bots: each is polled by one node only (its lease holder; the fake
//!     Bot API sees no competing getUpdates), and when that node is killed the other takes
//!     its bots over once their leases run out, and goes on reading them;
//!   - 2,000 scheduled tasks due at one instant: each fires once (one claim, one effect);
//! - `kill -9` while scheduled tasks fire (SQLite): after the restart every task is done and
//!   its effect (a notification keyed by the task's id, and its console event) exists once.
//!
//! Every process is killed when its [`Node`] is dropped, however the test ends.

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use futures_util::{FutureExt, SinkExt, StreamExt};
use omnihub::auth::tokens;
use omnihub_core::events::EventKind;
use omnihub_core::model::{Channel, ChannelGrant, ChannelKind, Client, Provider, User};
use omnihub_core::{ChannelRights, ConversationId, GlobalRights, Role};
use omnihub_sandbox::telegram::{Customer, TelegramSandbox};
use omnihub_store::{ConversationFilter, DynStore, NewApiToken, NewChannel, NewUser, SecretBox};
use serde_json::{Value, json};
use sqlx::{AssertSqlSafe, Connection};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::process::{free_port, omnihub};
use crate::support::{TempDir, password_hash};

const PG_ENV: &str = "OMNIHUB_TEST_POSTGRES_URL";
/// How long a process may take to answer `/readyz` after it was started.
const START: Duration = Duration::from_secs(30);
/// Longest any single expected thing may take.
const WAIT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------------------------

/// One `omnihub serve` process with its own config file and log; killed when dropped.
struct Node {
    name: String,
    dir: PathBuf,
    store_url: String,
    key: String,
    port: u16,
    child: Option<Child>,
    http: reqwest::Client,
    /// Appended to the config file (whole sections).
    extra_config: String,
}

impl Node {
    /// Starts a node whose files live in `dir/<name>` and waits until it is ready.
    async fn start(name: &str, dir: &Path, store_url: &str, key: &str) -> Node {
        Node::start_with(name, dir, store_url, key, "").await
    }

    /// [`Node::start`] with more config sections appended.
    async fn start_with(
        name: &str,
        dir: &Path,
        store_url: &str,
        key: &str,
        extra_config: &str,
    ) -> Node {
        let dir = dir.join(name);
        std::fs::create_dir_all(dir.join("data")).unwrap();
        let mut node = Node {
            name: name.to_string(),
            dir,
            store_url: store_url.to_string(),
            key: key.to_string(),
            port: 0,
            child: None,
            http: http_client(),
            extra_config: extra_config.to_string(),
        };
        node.spawn().await;
        node
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("omnihub.log")
    }

    /// What the process (all its runs) wrote.
    fn output(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Writes the config for a fresh port and runs the binary until `/readyz` answers 200.
    async fn spawn(&mut self) {
        assert!(self.child.is_none(), "{} is already running", self.name);
        self.port = free_port();
        let config = self.dir.join("omnihub.toml");
        let toml = format!(
            "[server]\n\
             listen = \"127.0.0.1:{port}\"\n\
             redirect_listen = \"\"\n\
             plain_http = true\n\
             public_url = \"http://127.0.0.1:{port}\"\n\
             data_dir = {data:?}\n\
             workers = 2\n\
             \n\
             [store]\n\
             url = {store:?}\n\
             \n\
             [security]\n\
             secret_key = {key:?}\n\
             cookie_secure = false\n",
            port = self.port,
            data = self.dir.join("data").display().to_string(),
            store = self.store_url,
            key = self.key,
        ) + &self.extra_config;
        std::fs::write(&config, toml).unwrap();
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .unwrap();
        let child = omnihub()
            .args(["serve", "--config"])
            .arg(&config)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start omnihub serve");
        self.child = Some(child);
        self.wait_ready().await;
    }

    async fn wait_ready(&mut self) {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("{} exited with {status}:\n{}", self.name, self.output());
            }
            match self.http.get(self.url("/readyz")).send().await {
                Ok(r) if r.status() == 200 => return,
                _ if started.elapsed() > START => {
                    panic!(
                        "{} not ready within {START:?}:\n{}",
                        self.name,
                        self.output()
                    )
                }
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// SIGKILL (`Child::kill`), then reaps the process.
    fn kill_dash_nine(&mut self) {
        let mut child = self.child.take().expect("running");
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// The operating system's id of the running process.
    fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    async fn get(&self, token: &str, path: &str) -> (u16, Value) {
        let r = self
            .http
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    async fn patch(&self, token: &str, path: &str, body: &Value) -> (u16, Value) {
        let r = self
            .http
            .patch(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    /// A customer message posted to the seeded API channel's webhook on this node.
    async fn inbound(&self, seed: &Seed, event: &str, conversation: &str, text: &str) -> Value {
        let r = self
            .http
            .post(self.url(&format!("/hooks/api/{}", seed.channel.id)))
            .bearer_auth(&seed.inbound_token)
            .json(&json!({
                "event_id": event,
                "conversation": conversation,
                "user": { "id": format!("user-{conversation}"), "name": "Customer Carol" },
                "text": text,
            }))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        assert_eq!(status, 200, "inbound {event} at {}: {body}", self.name);
        body
    }

    /// The conversation with this external id, as the owner lists it over REST.
    async fn conversation_by_external_id(&self, seed: &Seed, external: &str) -> Value {
        let (status, page) = self
            .get(&seed.owner_token, "/api/v1/conversations?limit=200")
            .await;
        assert_eq!(status, 200, "{page}");
        let found: Vec<&Value> = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["conversation"]["external_id"] == external)
            .collect();
        assert_eq!(found.len(), 1, "conversations `{external}` in {page}");
        found[0]["conversation"].clone()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn http_client() -> reqwest::Client {
    reqwest::Client::builder().timeout(WAIT).build().unwrap()
}

// ---------------------------------------------------------------------------------------------
// Seeding through the store
// ---------------------------------------------------------------------------------------------

/// One client: an owner, operators (employees with read and reply on the channel, no global
/// rights: they may only take unassigned conversations for themselves), an API channel with
/// an inbound token, and an API token for each person.
struct Seed {
    client: Client,
    owner_token: String,
    channel: Channel,
    inbound_token: String,
    operators: Vec<(User, String)>,
}

/// A fresh base64 secret key shared by every node of a test.
fn secret_key() -> String {
    SecretBox::generate().1
}

/// Seeds a migrated store; returns it open too, for reading under the processes.
async fn seed(store_url: &str, key: &str, operators: usize) -> (Seed, DynStore) {
    let store = omnihub_store::open(store_url, SecretBox::from_base64(key).unwrap())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let client = store
        .create_client("Nodes Trading", Some("pro"))
        .await
        .unwrap();
    let user = |email: String, name: String, role: Role| NewUser {
        email,
        display_name: name,
        password_hash: password_hash(),
        role,
        client_id: Some(client.id),
        global_rights: if role == Role::ClientOwner {
            GlobalRights::all()
        } else {
            GlobalRights::empty()
        },
        locale: "en".into(),
    };
    let token_for = async |user: &User| {
        let secret = tokens::new_api_token();
        store
            .create_api_token(&NewApiToken {
                client_id: client.id,
                user_id: user.id,
                name: format!("{} token", user.display_name),
                prefix: secret.chars().take(12).collect(),
                token_hash: tokens::hash(&secret),
                expires_at: None,
            })
            .await
            .unwrap();
        secret
    };
    let owner = store
        .create_user(&user(
            "owner@nodes.test".into(),
            "Nodes Owner".into(),
            Role::ClientOwner,
        ))
        .await
        .unwrap();
    let owner_token = token_for(&owner).await;
    let inbound_token = format!("inbound-nodes-{}", uuid::Uuid::new_v4().simple());
    let channel = store
        .create_channel(&NewChannel {
            client_id: client.id,
            kind: ChannelKind::Messaging,
            provider: Provider::Api,
            name: "Nodes Support".into(),
            settings: json!({}),
            credentials: Some(json!({ "inbound_token": inbound_token })),
        })
        .await
        .unwrap();
    let mut ops = Vec::new();
    for n in 1..=operators {
        let op = store
            .create_user(&user(
                format!("operator{n}@nodes.test"),
                format!("Nodes Operator {n}"),
                Role::Employee,
            ))
            .await
            .unwrap();
        store
            .set_channel_grants(
                client.id,
                op.id,
                &[ChannelGrant {
                    channel_id: channel.id,
                    rights: ChannelRights::READ | ChannelRights::REPLY,
                }],
            )
            .await
            .unwrap();
        let token = token_for(&op).await;
        ops.push((op, token));
    }
    let seed = Seed {
        client,
        owner_token,
        channel,
        inbound_token,
        operators: ops,
    };
    (seed, store)
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL: a fresh database per test, two nodes on it
// ---------------------------------------------------------------------------------------------

/// Runs `scenario` on the URL of a fresh database and drops the database afterwards, whether
/// the scenario passed or panicked (its nodes are killed first, as it unwinds). Skipped, with
/// a note, when `OMNIHUB_TEST_POSTGRES_URL` is unset.
async fn with_postgres<F, Fut>(scenario: F)
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = ()>,
{
    let Ok(admin_url) = std::env::var(PG_ENV) else {
        eprintln!(
            "skipped: {PG_ENV} is not set (e.g. postgres://postgres@127.0.0.1:5432/test); \
             the CI sets it"
        );
        return;
    };
    let name = format!("omnihub_nodes_{}", uuid::Uuid::new_v4().simple());
    let mut admin = admin_connection(&admin_url).await;
    sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .unwrap();
    admin.close().await.unwrap();
    let outcome = AssertUnwindSafe(scenario(with_database(&admin_url, &name)))
        .catch_unwind()
        .await;
    let mut admin = admin_connection(&admin_url).await;
    sqlx::raw_sql(AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&mut admin)
    .await
    .unwrap();
    admin.close().await.unwrap();
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// To the database the URL names or, when that one does not exist, the `postgres` one.
async fn admin_connection(admin_url: &str) -> sqlx::PgConnection {
    match sqlx::PgConnection::connect(admin_url).await {
        Ok(conn) => conn,
        Err(first) => sqlx::PgConnection::connect(&with_database(admin_url, "postgres"))
            .await
            .unwrap_or_else(|e| {
                panic!("cannot reach {admin_url} ({first}) nor its postgres database ({e})")
            }),
    }
}

/// `url` with its database name replaced by `db` (query parameters kept).
fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let authority = base.find("://").map_or(0, |i| i + 3);
    let path = base[authority..]
        .find('/')
        .map_or(base.len(), |i| authority + i);
    let mut out = format!("{}/{db}", &base[..path]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// Two nodes on one PostgreSQL database, seeded with `operators` operators.
struct Cluster {
    a: Node,
    b: Node,
    seed: Seed,
    store: DynStore,
    _dir: TempDir,
}

impl Cluster {
    async fn start(label: &str, url: &str, operators: usize) -> Cluster {
        let dir = TempDir::new(label);
        let key = secret_key();
        let (seed, store) = seed(url, &key, operators).await;
        let (a, b) = futures_util::join!(
            Node::start("node-a", dir.path(), url, &key),
            Node::start("node-b", dir.path(), url, &key),
        );
        Cluster {
            a,
            b,
            seed,
            store,
            _dir: dir,
        }
    }

    /// Node A for even `i`, node B for odd.
    fn node(&self, i: usize) -> &Node {
        if i.is_multiple_of(2) {
            &self.a
        } else {
            &self.b
        }
    }
}

// ---------------------------------------------------------------------------------------------
// An operator console
// ---------------------------------------------------------------------------------------------

struct Ws(WebSocketStream<MaybeTlsStream<TcpStream>>);

impl Ws {
    /// Opens the socket with an API token and says `hello`.
    async fn connect(node: &Node, token: &str) -> Ws {
        let mut req = format!("ws://127.0.0.1:{}/api/v1/ws", node.port)
            .into_client_request()
            .unwrap();
        req.headers_mut().insert(
            "authorization",
            HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
        );
        let (stream, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(req))
            .await
            .expect("websocket handshake timed out")
            .expect("websocket handshake");
        let mut ws = Ws(stream);
        ws.0.send(Message::text(
            json!({ "v": 1, "type": "hello" }).to_string(),
        ))
        .await
        .unwrap();
        let welcome = ws.next(WAIT).await;
        assert_eq!(welcome["type"], "welcome", "{welcome}");
        ws
    }

    /// The next JSON frame within `within`.
    async fn next(&mut self, within: Duration) -> Value {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.0.next())
                .await
                .unwrap_or_else(|_| panic!("nothing arrived on the socket within {within:?}"))
                .expect("the socket ended")
                .expect("socket error");
            match frame {
                Message::Text(t) => return serde_json::from_str(t.as_str()).unwrap(),
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("unexpected frame {other:?}"),
            }
        }
    }

    /// The first `event` frame that matches within `within`, skipping the others.
    async fn event_where(&mut self, within: Duration, pred: impl Fn(&Value) -> bool) -> Value {
        self.frame_where(within, |f| f["type"] == "event" && pred(f))
            .await
    }

    /// The first frame that matches within `within`, skipping the others.
    async fn frame_where(&mut self, within: Duration, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let f = self.next(left).await;
            if pred(&f) {
                return f;
            }
        }
    }
}

fn is_message_created_of(f: &Value, message_id: &Value) -> bool {
    f["kind"] == "message_created" && f["payload"]["id"] == *message_id
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[actix_web::test]
async fn kill_dash_nine_after_ack_loses_nothing() {
    let dir = TempDir::new("nodes-kill9");
    let key = secret_key();
    let db = dir.path().join("node/data/omnihub.db");
    std::fs::create_dir_all(db.parent().unwrap()).unwrap();
    let url = format!("sqlite://{}", db.display());
    let (seed, store) = seed(&url, &key, 0).await;
    // The process owns the file from now on.
    drop(store);
    let mut node = Node::start("node", dir.path(), &url, &key).await;

    // Three customer messages, each acknowledged; the process is SIGKILLed the moment the
    // last 200 has been read, before it could finish anything it does after committing.
    let mut acked = Vec::new();
    for n in 1..=3 {
        let answer = node
            .inbound(
                &seed,
                &format!("evt-kill-{n}"),
                "chat-kill",
                &format!("Message {n} before the crash"),
            )
            .await;
        assert_eq!(answer["duplicate"], false, "{answer}");
        acked.push(answer["message_id"].clone());
    }
    node.kill_dash_nine();
    node.spawn().await;

    let inbound_messages = async |node: &Node| {
        let conversation = node.conversation_by_external_id(&seed, "chat-kill").await;
        let id = conversation["id"].as_str().unwrap().to_string();
        let (status, page) = node
            .get(
                &seed.owner_token,
                &format!("/api/v1/conversations/{id}/messages?limit=200"),
            )
            .await;
        assert_eq!(status, 200, "{page}");
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["direction"] == "inbound")
            .cloned()
            .collect::<Vec<Value>>()
    };
    let found = inbound_messages(&node).await;
    assert_eq!(found.len(), 3, "after the restart: {found:?}");
    for (n, id) in acked.iter().enumerate() {
        let same: Vec<&Value> = found.iter().filter(|m| m["id"] == *id).collect();
        assert_eq!(
            same.len(),
            1,
            "acknowledged message {id} after the restart: {found:?}"
        );
        assert_eq!(
            same[0]["text"],
            format!("Message {} before the crash", n + 1)
        );
    }

    // The sender retries the last event (it cannot know the ack was the last thing said):
    // a duplicate naming the same message, and nothing new.
    let again = node
        .inbound(
            &seed,
            "evt-kill-3",
            "chat-kill",
            "Message 3 before the crash",
        )
        .await;
    assert_eq!(again["duplicate"], true, "{again}");
    assert_eq!(again["message_id"], acked[2]);
    assert_eq!(inbound_messages(&node).await.len(), 3);
}

#[actix_web::test]
async fn a_message_at_node_a_reaches_an_operator_on_node_b() {
    with_postgres(|url| async move {
        let c = Cluster::start("nodes-push", &url, 1).await;
        let mut on_a = Ws::connect(&c.a, &c.seed.owner_token).await;
        let mut on_b = Ws::connect(&c.b, &c.seed.owner_token).await;
        let mut conversation = Value::Null;

        // Nothing but the database connects the nodes: node B's publisher learns of node A's
        // commit only through NOTIFY (there is no polling to fall back on).
        for (from, to, ws, n) in [(&c.a, &c.b, &mut on_b, 1), (&c.b, &c.a, &mut on_a, 2)] {
            let text = format!("Hello via {}", from.name);
            let started = Instant::now();
            let answer = from
                .inbound(&c.seed, &format!("evt-push-{n}"), "chat-push", &text)
                .await;
            let message_id = answer["message_id"].clone();
            let event = ws
                .event_where(Duration::from_secs(3), |f| {
                    is_message_created_of(f, &message_id)
                })
                .await;
            eprintln!(
                "{} → operator on {}: {:?}",
                from.name,
                to.name,
                started.elapsed()
            );
            assert_eq!(event["payload"]["text"], text.as_str());
            assert_eq!(event["payload"]["direction"], "inbound");
            assert!(event["conversation_id"].is_string(), "{event}");
            conversation = event["conversation_id"].clone();
        }

        // What is not stored crosses too: an operator on node A types and goes away; the
        // owner's console on node B is told both.
        let (operator, operator_token) = &c.seed.operators[0];
        let mut operator_on_a = Ws::connect(&c.a, operator_token).await;
        for request in [
            json!({"v": 1, "type": "typing", "ref": "t", "conversation_id": conversation}),
            json!({"v": 1, "type": "presence", "ref": "p", "presence": "away"}),
        ] {
            operator_on_a
                .0
                .send(Message::text(request.to_string()))
                .await
                .unwrap();
        }
        let operator_id = json!(operator.id);
        for wanted in ["typing", "presence"] {
            let frame = on_b
                .frame_where(WAIT, |f| f["type"] == wanted && f["user_id"] == operator_id)
                .await;
            if wanted == "typing" {
                assert_eq!(frame["conversation_id"], conversation, "{frame}");
            } else {
                assert_eq!(frame["presence"], "away", "{frame}");
            }
        }
    })
    .await;
}

#[actix_web::test]
async fn two_nodes_never_assign_one_conversation_twice() {
    with_postgres(|url| async move {
        let c = Cluster::start("nodes-take", &url, 2).await;
        let (op1, token1) = &c.seed.operators[0];
        let (op2, token2) = &c.seed.operators[1];
        const ROUNDS: usize = 8;
        let (mut raced, mut late) = (0, 0);
        for round in 0..ROUNDS {
            let external = format!("chat-take-{round}");
            c.node(round)
                .inbound(
                    &c.seed,
                    &format!("evt-take-{round}"),
                    &external,
                    "Who takes me?",
                )
                .await;
            let conversation = c.a.conversation_by_external_id(&c.seed, &external).await;
            assert!(conversation["assignee_id"].is_null(), "{conversation}");
            let id = conversation["id"].as_str().unwrap().to_string();
            let path = format!("/api/v1/conversations/{id}");

            // Each operator takes it for themselves through a different node, at once.
            let (n1, n2) = (c.node(round), c.node(round + 1));
            let (take1, take2) = (
                json!({ "assignee_id": op1.id }),
                json!({ "assignee_id": op2.id }),
            );
            let ((s1, b1), (s2, b2)) = futures_util::join!(
                n1.patch(token1, &path, &take1),
                n2.patch(token2, &path, &take2),
            );
            let (winner, winner_body, loser_status, loser_body) = match (s1, s2) {
                (200, 200) => panic!("assigned twice: {b1} / {b2}"),
                (200, _) => (op1, b1, s2, b2),
                (_, 200) => (op2, b2, s1, b1),
                _ => panic!("nobody took it: {s1} {b1} / {s2} {b2}"),
            };
            assert_eq!(winner_body["assignee_id"], json!(winner.id));
            // 409 when both passed the checks before the winner committed (the store's
            // assign-only-if-unassigned refused the second); 404 when the loser's request came
            // after the commit: an operator does not see another's conversation at all.
            match loser_status {
                409 => {
                    assert_eq!(loser_body["code"], "conflict", "{loser_body}");
                    raced += 1;
                }
                404 => late += 1,
                other => panic!("the loser got {other} {loser_body}"),
            }

            // The store and both nodes agree on the winner.
            let stored = c
                .store
                .get_conversation(c.seed.client.id, id.parse::<ConversationId>().unwrap())
                .await
                .unwrap();
            assert_eq!(stored.assignee_id, Some(winner.id), "round {round}");
            for node in [&c.a, &c.b] {
                let (status, body) = node.get(&c.seed.owner_token, &path).await;
                assert_eq!(status, 200, "{body}");
                assert_eq!(
                    body["conversation"]["assignee_id"],
                    json!(winner.id),
                    "{} {body}",
                    node.name
                );
            }
        }
        eprintln!(
            "{ROUNDS} rounds: the loser got 409 (a real race) {raced} times, \
             404 (after the winner's commit) {late} times"
        );
        // Requests sent together do race (all of 8 rounds in practice): the store's
        // assign-only-if-unassigned must have been what decided at least once.
        assert!(
            raced > 0,
            "no round raced: the test did not exercise the conflict"
        );
    })
    .await;
}

#[actix_web::test]
async fn each_scheduled_task_fires_once_across_nodes() {
    with_postgres(|url| async move {
        let c = Cluster::start("nodes-snooze", &url, 0).await;
        const N: usize = 24;
        for i in 0..N {
            c.node(i)
                .inbound(
                    &c.seed,
                    &format!("evt-snooze-{i}"),
                    &format!("chat-snooze-{i}"),
                    "Remind me later",
                )
                .await;
        }
        let (status, page) =
            c.a.get(&c.seed.owner_token, "/api/v1/conversations?limit=200")
                .await;
        assert_eq!(status, 200, "{page}");
        let ids: Vec<String> = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["conversation"]["id"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(ids.len(), N, "{page}");

        // All wake up at the same moment, so both nodes' schedulers go for the due tasks at
        // once; each node scheduled half of them.
        let until = chrono::Utc::now() + chrono::Duration::milliseconds(2500);
        let until_text = until.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        for (i, id) in ids.iter().enumerate() {
            let (status, body) = c
                .node(i)
                .patch(
                    &c.seed.owner_token,
                    &format!("/api/v1/conversations/{id}"),
                    &json!({ "status": "snoozed", "snoozed_until": until_text }),
                )
                .await;
            assert_eq!(status, 200, "{body}");
            assert_eq!(body["status"], "snoozed");
        }
        assert!(
            chrono::Utc::now() < until,
            "snoozing took too long to test anything"
        );

        // Wait until every one is open again, then a while longer for any second firing.
        let deadline = Instant::now() + Duration::from_millis(2500) + WAIT;
        loop {
            let mut open = 0;
            for id in &ids {
                let conversation = c
                    .store
                    .get_conversation(c.seed.client.id, id.parse().unwrap())
                    .await
                    .unwrap();
                open += usize::from(
                    conversation.status == omnihub_core::model::ConversationStatus::Open,
                );
            }
            if open == N {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{open} of {N} snoozed conversations woke up\nnode A:\n{}\nnode B:\n{}",
                c.a.output(),
                c.b.output()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let woke_after = chrono::Utc::now() - until;
        tokio::time::sleep(Duration::from_millis(1500)).await;

        // Each task was claimed once and is done.
        let mut db = sqlx::PgConnection::connect(&url).await.unwrap();
        let tasks: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT idempotency_key, status, attempts FROM tasks \
             WHERE kind = 'conversation.unsnooze' ORDER BY idempotency_key",
        )
        .fetch_all(&mut db)
        .await
        .unwrap();
        db.close().await.unwrap();
        assert_eq!(tasks.len(), N, "{tasks:?}");
        for (key, status, attempts) in &tasks {
            assert_eq!(
                (status.as_str(), *attempts),
                ("done", 1),
                "task {key}: {tasks:?}"
            );
        }

        // Each conversation was reopened once: one `conversation_updated` with status open
        // after the one that snoozed it.
        let events = c
            .store
            .events_after(c.seed.client.id, 0, 10_000)
            .await
            .unwrap();
        let mut reopened: HashMap<String, usize> = HashMap::new();
        let mut snoozed: HashMap<String, bool> = HashMap::new();
        for e in events
            .iter()
            .filter(|e| e.kind == EventKind::ConversationUpdated)
        {
            let id = e.payload["id"].as_str().unwrap().to_string();
            match e.payload["status"].as_str().unwrap() {
                "snoozed" => {
                    snoozed.insert(id, true);
                }
                "open" if snoozed.get(&id).copied().unwrap_or(false) => {
                    *reopened.entry(id).or_default() += 1;
                }
                _ => {}
            }
        }
        for id in &ids {
            assert_eq!(
                reopened.get(id).copied().unwrap_or(0),
                1,
                "conversation {id} reopened {:?} times",
                reopened.get(id)
            );
        }
        eprintln!(
            "{N} snoozed conversations woke up {} ms after their time, once each",
            woke_after.num_milliseconds()
        );
    })
    .await;
}

/// Four long-polled bots, two nodes: one poller per bot, the survivor takes over.
#[actix_web::test]
async fn each_polled_bot_has_one_poller_and_a_survivor_takes_over() {
    with_postgres(|url| async move {
        let telegram = TelegramSandbox::start().await.unwrap();
        let dir = TempDir::new("nodes-poll-leases");
        let key = secret_key();
        let (seed, store) = seed(&url, &key, 0).await;
        let mut bots = Vec::new();
        for n in 0..4 {
            let token = format!("70055500{n}:AAH-lease_test_bot_{n}");
            let bot = telegram.add_bot(&token);
            let channel = store
                .create_channel(&NewChannel {
                    client_id: seed.client.id,
                    kind: ChannelKind::Messaging,
                    provider: Provider::Telegram,
                    name: format!("Polled bot {n}"),
                    settings: json!({ "updates": "long_poll" }),
                    credentials: Some(json!({ "bot_token": token })),
                })
                .await
                .unwrap();
            bots.push((bot, channel));
        }
        // Short leases, so the takeover below comes within seconds.
        let extra = format!(
            "\n[providers]\ntelegram_api = {:?}\npoll_lease_secs = 3\n",
            telegram.base_url().to_string()
        );
        let (mut a, b) = futures_util::join!(
            Node::start_with("node-a", dir.path(), &url, &key, &extra),
            Node::start_with("node-b", dir.path(), &url, &key, &extra),
        );
        let pid = |holder: &str| -> u32 {
            holder
                .strip_prefix("pid-")
                .and_then(|rest| rest.split('-').next())
                .and_then(|pid| pid.parse().ok())
                .unwrap_or_else(|| panic!("holder `{holder}`"))
        };
        let holders = async || -> Option<Vec<u32>> {
            let mut all = Vec::new();
            for (_, channel) in &bots {
                let (holder, _) = store.poll_lease(channel.id).await.unwrap()?;
                all.push(pid(&holder));
            }
            Some(all)
        };
        let first = wait_for("a lease on every bot", async || holders().await).await;
        for holder in &first {
            assert!([a.pid(), b.pid()].contains(holder), "{first:?}");
        }

        // A customer writes to every bot; each message lands once.
        let say = async |round: &str| {
            for (n, (bot, _)) in bots.iter().enumerate() {
                let chat = 9100 + n as i64;
                bot.customer_says(chat, &Customer::new(chat, "Lease"), &format!("{round} {n}"))
                    .await
                    .unwrap();
            }
        };
        say("Before").await;
        wait_for("the first messages", async || {
            (count_texts(&store, &seed, "Before").await == bots.len()).then_some(())
        })
        .await;
        // A second round: every bot long-polled again after handing over the first.
        say("Again").await;
        wait_for("the second messages", async || {
            (count_texts(&store, &seed, "Again").await == bots.len()).then_some(())
        })
        .await;
        // Never two getUpdates at once: a second poller would cut the first one's wait short.
        for (bot, channel) in &bots {
            assert_eq!(bot.poll_conflicts(), 0, "two pollers on {}", channel.name);
        }
        assert_eq!(
            holders().await.unwrap(),
            first,
            "leases moved between live nodes"
        );

        // Node A dies; its leases run out and B takes every bot over.
        let dead = a.pid();
        a.kill_dash_nine();
        let survivor = b.pid();
        wait_for("the survivor holding every lease", async || {
            holders()
                .await
                .filter(|all| all.iter().all(|h| *h == survivor))
        })
        .await;
        assert_ne!(dead, survivor);
        say("After").await;
        wait_for("the messages after the takeover", async || {
            (count_texts(&store, &seed, "After").await == bots.len()).then_some(())
        })
        .await;
        assert_eq!(count_texts(&store, &seed, "Before").await, bots.len());
        assert_eq!(telegram.violations(), []);
        drop(b);
    })
    .await;
}

/// How many messages of the client start with `prefix`.
async fn count_texts(store: &DynStore, seed: &Seed, prefix: &str) -> usize {
    let filter = ConversationFilter {
        limit: 200,
        ..Default::default()
    };
    let mut n = 0;
    for s in store
        .list_conversations(seed.client.id, None, &filter)
        .await
        .unwrap()
    {
        n += store
            .conversation_messages(seed.client.id, s.conversation.id, None, 200)
            .await
            .unwrap()
            .iter()
            .filter(|m| m.text.starts_with(prefix))
            .count();
    }
    n
}

/// Polls `probe` until it yields, for at most 20 s (leases of 3 s run out well within).
async fn wait_for<T>(what: &str, mut probe: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(found) = probe().await {
            return found;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Scheduled tasks under crashes and across nodes
// ---------------------------------------------------------------------------------------------

/// `n` notification tasks for the seeded client's first operator, all due at `due`: the
/// hub's own `trigger.notify`, whose effect (a notification keyed by the task's id, and its
/// console event) is recorded in the database once per task however often the task runs.
async fn notification_tasks(
    store: &DynStore,
    seed: &Seed,
    n: usize,
    due: chrono::DateTime<chrono::Utc>,
) -> Vec<uuid::Uuid> {
    let user = seed.operators[0].0.id;
    futures_util::stream::iter(0..n)
        .map(|i| {
            let task = omnihub_store::NewTask {
                client_id: Some(seed.client.id),
                kind: "trigger.notify".into(),
                payload: json!({ "client_id": seed.client.id, "user_id": user, "n": i }),
                due_at: due,
                idempotency_key: format!("notify-{i}"),
            };
            async move { store.schedule_task(&task).await.unwrap().id }
        })
        .buffer_unordered(16)
        .collect()
        .await
}

/// What the database says of the notification tasks: (tasks, done, run more than once,
/// notifications of a task, notification events).
const NOTIFICATION_EFFECTS: &str = "SELECT \
    (SELECT COUNT(*) FROM tasks WHERE kind = 'trigger.notify'), \
    (SELECT COUNT(*) FROM tasks WHERE kind = 'trigger.notify' AND status = 'done'), \
    (SELECT COUNT(*) FROM tasks WHERE kind = 'trigger.notify' AND attempts > 1), \
    (SELECT COUNT(*) FROM notifications n JOIN tasks t ON t.id = n.id), \
    (SELECT COUNT(*) FROM events WHERE kind = 'notification')";

type Effects = (i64, i64, i64, i64, i64);

async fn sqlite_effects(db: &mut sqlx::SqliteConnection) -> Effects {
    sqlx::query_as(NOTIFICATION_EFFECTS)
        .fetch_one(db)
        .await
        .unwrap()
}

async fn pg_effects(db: &mut sqlx::PgConnection) -> Effects {
    sqlx::query_as(NOTIFICATION_EFFECTS)
        .fetch_one(db)
        .await
        .unwrap()
}

#[actix_web::test]
async fn kill_dash_nine_while_tasks_fire_loses_none_and_doubles_none() {
    const N: usize = 3000;
    let dir = TempDir::new("nodes-kill-tasks");
    let key = secret_key();
    let db_path = dir.path().join("node/data/omnihub.db");
    std::fs::create_dir_all(db_path.parent().unwrap()).unwrap();
    let url = format!("sqlite://{}", db_path.display());
    let (seed, store) = seed(&url, &key, 1).await;
    let due = chrono::Utc::now() + chrono::Duration::seconds(2);
    notification_tasks(&store, &seed, N, due).await;
    drop(store);
    // A short lease: the restarted process takes over what the killed one had claimed.
    let mut node = Node::start_with(
        "node",
        dir.path(),
        &url,
        &key,
        "\n[hub]\ntask_lease_secs = 2\n",
    )
    .await;
    let mut db = sqlx::SqliteConnection::connect(&url).await.unwrap();

    // SIGKILL as soon as the first effects are committed: the process is mid-round.
    let deadline = Instant::now() + WAIT + Duration::from_secs(2);
    loop {
        let (_, done, _, notified, _) = sqlite_effects(&mut db).await;
        if notified > 0 {
            assert!(
                done < N as i64,
                "all fired before the kill: nothing was tested"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "nothing fired:\n{}",
            node.output()
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    node.kill_dash_nine();
    let (_, done_at_kill, _, notified_at_kill, _) = sqlite_effects(&mut db).await;
    node.spawn().await;

    let deadline = Instant::now() + WAIT * 6;
    let effects = loop {
        let effects = sqlite_effects(&mut db).await;
        if effects.1 == N as i64 {
            break effects;
        }
        assert!(
            Instant::now() < deadline,
            "{effects:?} of {N} (at the kill: {done_at_kill} done, {notified_at_kill} notified):\n{}",
            node.output()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    db.close().await.unwrap();
    let (tasks, done, rerun, notified, events) = effects;
    assert_eq!((tasks, done), (N as i64, N as i64), "every task completed");
    assert_eq!(notified, N as i64, "each task's notification exactly once");
    assert_eq!(events, N as i64, "each pushed to the console exactly once");
    assert!(
        rerun > 0,
        "no task was caught mid-run by the kill (done at the kill: {done_at_kill})"
    );
}

#[actix_web::test]
async fn two_nodes_on_postgres_fire_each_task_once() {
    with_postgres(|url| async move {
        const N: usize = 2000;
        let dir = TempDir::new("nodes-tasks");
        let key = secret_key();
        let (seed, store) = seed(&url, &key, 1).await;
        let (a, b) = futures_util::join!(
            Node::start("node-a", dir.path(), &url, &key),
            Node::start("node-b", dir.path(), &url, &key),
        );
        // Due together, a moment after both nodes are up: both schedulers go for them at once.
        let due = chrono::Utc::now() + chrono::Duration::seconds(2);
        notification_tasks(&store, &seed, N, due).await;
        let mut db = sqlx::PgConnection::connect(&url).await.unwrap();
        let deadline = Instant::now() + WAIT * 3;
        let effects = loop {
            let effects = pg_effects(&mut db).await;
            if effects.1 == N as i64 {
                break effects;
            }
            assert!(
                Instant::now() < deadline,
                "{effects:?} of {N}\nnode A:\n{}\nnode B:\n{}",
                a.output(),
                b.output()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        // A while longer for any second firing.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let after = pg_effects(&mut db).await;
        db.close().await.unwrap();
        assert_eq!(after, effects);
        let (tasks, done, rerun, notified, events) = effects;
        assert_eq!((tasks, done), (N as i64, N as i64));
        assert_eq!(rerun, 0, "each task claimed once");
        assert_eq!((notified, events), (N as i64, N as i64));
    })
    .await;
}
