//! A fake Asterisk Manager Interface on TCP: the `Asterisk Call Manager/…` greeting, `Login`
//! (user and secret of `manager.conf`; anything before it is `Permission denied`), `Originate`
//! checked against `manager_doc.xml` (documented parameter names only, `Channel` required,
//! `Exten`/`Context`/`Priority` or `Application`), `Logoff`. An accepted async originate answers
//! `Originate successfully queued` and plays the call on the same connection with
//! `timestampevents` on: `OriginateResponse`, then `DialEnd` and `Hangup` of our channel.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::net::tcp::OwnedWriteHalf;

use super::{Script, Scripted, ami_action_parameters};
use crate::support::Violations;

pub struct AmiConfig {
    pub username: String,
    pub secret: String,
}

impl Default for AmiConfig {
    fn default() -> Self {
        AmiConfig {
            username: "omnihub".into(),
            secret: "ami-secret-5".into(),
        }
    }
}

struct State {
    config: AmiConfig,
    script: Script,
    violations: Violations,
    actions: Mutex<Vec<Vec<(String, String)>>>,
    played: Mutex<Vec<Vec<(String, String)>>>,
}

pub struct AmiSandbox {
    addr: SocketAddr,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl AmiSandbox {
    pub async fn start(config: AmiConfig) -> std::io::Result<AmiSandbox> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            config,
            script: Script::new(),
            violations: Violations::default(),
            actions: Mutex::new(Vec::new()),
            played: Mutex::new(Vec::new()),
        });
        let shared = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(serve(socket, shared.clone()));
            }
        });
        Ok(AmiSandbox { addr, state, task })
    }

    /// `tcp://127.0.0.1:PORT`, the `ami_url` of a channel.
    pub fn url(&self) -> String {
        format!("tcp://{}", self.addr)
    }

    pub fn script(&self, next: Scripted) {
        self.state.script.set(next);
    }

    /// Every action received (secrets included, as sent), in order.
    pub fn actions(&self) -> Vec<Vec<(String, String)>> {
        self.state
            .actions
            .lock()
            .map(|a| a.clone())
            .unwrap_or_default()
    }

    pub fn played(&self) -> Vec<Vec<(String, String)>> {
        self.state
            .played
            .lock()
            .map(|a| a.clone())
            .unwrap_or_default()
    }

    pub fn violations(&self) -> Vec<String> {
        self.state.violations.all()
    }
}

impl Drop for AmiSandbox {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn get<'a>(m: &'a [(String, String)], key: &str) -> Option<&'a str> {
    m.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v.as_str())
}

async fn send(write: &mut OwnedWriteHalf, fields: &[(&str, String)]) -> std::io::Result<()> {
    let mut out = String::new();
    for (k, v) in fields {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    write.write_all(out.as_bytes()).await
}

async fn serve(socket: tokio::net::TcpStream, state: Arc<State>) {
    let (read, mut write) = socket.into_split();
    let mut reader = BufReader::new(read);
    if write
        .write_all(b"Asterisk Call Manager/9.0.0\r\n")
        .await
        .is_err()
    {
        return;
    }
    let mut logged_in = false;
    let mut message: Vec<(String, String)> = Vec::new();
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let line = line.trim_end_matches(['\r', '\n']);
        if !line.is_empty() {
            if let Some((k, v)) = line.split_once(':') {
                message.push((k.trim().to_string(), v.trim().to_string()));
            } else {
                state
                    .violations
                    .record(format!("AMI: a line without a colon: `{line}`"));
            }
            continue;
        }
        if message.is_empty() {
            continue;
        }
        let action = std::mem::take(&mut message);
        if let Ok(mut a) = state.actions.lock() {
            a.push(action.clone());
        }
        let id = get(&action, "ActionID").unwrap_or_default().to_string();
        let name = get(&action, "Action").unwrap_or_default().to_string();
        let documented = ami_action_parameters(&name);
        let mut problems = Vec::new();
        if documented.len() <= 1 && !name.eq_ignore_ascii_case("Logoff") {
            problems.push(format!("undocumented action `{name}`"));
        }
        for (k, _) in &action {
            if k != "Action"
                && !documented.iter().any(|(n, _)| n == k)
                && !name.eq_ignore_ascii_case("Logoff")
            {
                problems.push(format!("{name}: undocumented parameter `{k}`"));
            }
        }
        for (n, required) in &documented {
            if *required && get(&action, n).is_none() {
                problems.push(format!("{name}: missing required `{n}`"));
            }
        }
        if !problems.is_empty() {
            for p in &problems {
                state.violations.record(format!("AMI {p}"));
            }
            let _ = send(
                &mut write,
                &[
                    ("Response", "Error".into()),
                    ("ActionID", id),
                    ("Message", problems.join("; ")),
                ],
            )
            .await;
            continue;
        }
        let result = match name.as_str() {
            "Login" => {
                let ok = get(&action, "Username") == Some(state.config.username.as_str())
                    && get(&action, "Secret") == Some(state.config.secret.as_str());
                logged_in = ok;
                if ok {
                    send(
                        &mut write,
                        &[
                            ("Response", "Success".into()),
                            ("ActionID", id),
                            ("Message", "Authentication accepted".into()),
                        ],
                    )
                    .await
                } else {
                    send(
                        &mut write,
                        &[
                            ("Response", "Error".into()),
                            ("ActionID", id),
                            ("Message", "Authentication failed".into()),
                        ],
                    )
                    .await
                }
            }
            "Logoff" => {
                let _ = send(
                    &mut write,
                    &[
                        ("Response", "Goodbye".into()),
                        ("ActionID", id),
                        ("Message", "Thanks for all the fish.".into()),
                    ],
                )
                .await;
                return;
            }
            _ if !logged_in => {
                send(
                    &mut write,
                    &[
                        ("Response", "Error".into()),
                        ("ActionID", id),
                        ("Message", "Permission denied".into()),
                    ],
                )
                .await
            }
            "Originate" => originate(&mut write, &state, &action, id).await,
            _ => {
                send(
                    &mut write,
                    &[
                        ("Response", "Error".into()),
                        ("ActionID", id),
                        ("Message", "Invalid/unknown command".into()),
                    ],
                )
                .await
            }
        };
        if result.is_err() {
            return;
        }
    }
}

async fn originate(
    write: &mut OwnedWriteHalf,
    state: &State,
    action: &[(String, String)],
    id: String,
) -> std::io::Result<()> {
    let has_exten = ["Exten", "Context", "Priority"]
        .iter()
        .all(|k| get(action, k).is_some());
    if !has_exten && get(action, "Application").is_none() {
        state
            .violations
            .record("AMI Originate: neither Exten/Context/Priority nor Application");
        return send(
            write,
            &[
                ("Response", "Error".into()),
                ("ActionID", id),
                ("Message", "Exten not specified".into()),
            ],
        )
        .await;
    }
    if get(action, "Async").is_none_or(|a| !a.eq_ignore_ascii_case("true")) {
        state
            .violations
            .record("AMI Originate: not Async (the connection would block)");
    }
    send(
        write,
        &[
            ("Response", "Success".into()),
            ("ActionID", id.clone()),
            ("Message", "Originate successfully queued".into()),
        ],
    )
    .await?;
    let unique =
        get(action, "ChannelId").map_or_else(|| "1732700000.1".to_string(), str::to_string);
    let channel = format!("{}-00000001", get(action, "Channel").unwrap_or_default());
    let started = chrono::Utc::now().timestamp() as f64;
    let stamp = |offset: f64| format!("{:.6}", started + offset);
    let script = state.script.get();
    let mut events: Vec<Vec<(&str, String)>> = Vec::new();
    events.push(vec![
        ("Event", "OriginateResponse".into()),
        ("Privilege", "call,all".into()),
        ("Timestamp", stamp(2.0)),
        ("ActionID", id.clone()),
        ("Response", "Success".into()),
        ("Channel", channel.clone()),
        ("Context", get(action, "Context").unwrap_or_default().into()),
        ("Exten", get(action, "Exten").unwrap_or_default().into()),
        ("Reason", "4".into()),
        ("Uniqueid", unique.clone()),
        (
            "CallerIDNum",
            get(action, "CallerID").unwrap_or_default().into(),
        ),
        ("CallerIDName", "<unknown>".into()),
    ]);
    let (status, talked) = match script {
        Scripted::Answered { duration_secs } => ("ANSWER", f64::from(duration_secs)),
        Scripted::NoAnswer => ("NOANSWER", 0.0),
        Scripted::Busy => ("BUSY", 0.0),
        Scripted::Failed => ("CONGESTION", 0.0),
    };
    events.push(vec![
        ("Event", "DialEnd".into()),
        ("Privilege", "call,all".into()),
        ("Timestamp", stamp(7.0)),
        ("Channel", channel.clone()),
        ("Uniqueid", unique.clone()),
        ("DestChannel", "PJSIP/trunk-00000002".into()),
        ("DestUniqueid", format!("{unique}-peer")),
        ("DialStatus", status.into()),
    ]);
    events.push(vec![
        ("Event", "Hangup".into()),
        ("Privilege", "call,all".into()),
        ("Timestamp", stamp(7.0 + talked)),
        ("Channel", channel),
        ("Uniqueid", unique),
        ("Cause", "16".into()),
        ("Cause-txt", "Normal Clearing".into()),
    ]);
    for event in events {
        send(write, &event).await?;
        if let Ok(mut p) = state.played.lock() {
            p.push(
                event
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.clone()))
                    .collect(),
            );
        }
    }
    Ok(())
}
