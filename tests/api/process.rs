//! The real binary: `omnihub demo` serving HTTPS with its self-signed certificate and HSTS, the
//! plain-HTTP listener that only redirects, its inbox filling from every messenger, the
//! mailbox and the social profiles of every network, and the configuration commands.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::TempDir;

const BIN: &str = env!("CARGO_BIN_EXE_omnihub");

/// The binary without any `OMNIHUB_*` variable of the environment the tests run in.
pub(crate) fn omnihub() -> Command {
    let mut cmd = Command::new(BIN);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("OMNIHUB_") {
            cmd.env_remove(key);
        }
    }
    cmd.stdin(Stdio::null());
    cmd
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("run omnihub")
}

/// A port free at the time of asking.
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Kills the child when the test ends, however it ends.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Accepts the demo's self-signed certificate and follows no redirect.
fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

#[actix_web::test]
async fn demo_serves_https_with_hsts_redirects_plain_http_and_fills_the_inbox() {
    let dir = TempDir::new("demo");
    let (https, http, sandbox) = (free_port(), free_port(), free_port());
    let log = std::fs::File::create(dir.path().join("demo.log")).unwrap();
    let child = omnihub()
        .args([
            "demo",
            "--listen",
            &format!("127.0.0.1:{https}"),
            "--redirect-listen",
            &format!("127.0.0.1:{http}"),
            "--sandbox-listen",
            &format!("127.0.0.1:{sandbox}"),
        ])
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("start omnihub demo");
    let mut child = KillOnDrop(child);
    let output = || std::fs::read_to_string(dir.path().join("demo.log")).unwrap_or_default();

    let tls = client();
    let base = format!("https://127.0.0.1:{https}");
    let started = Instant::now();
    let health = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            panic!("omnihub demo exited with {status}:\n{}", output());
        }
        match tls.get(format!("{base}/healthz")).send().await {
            Ok(r) => break r,
            Err(e) if started.elapsed() > Duration::from_secs(60) => {
                panic!("no HTTPS answer within 60 s ({e}):\n{}", output())
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    };
    assert_eq!(health.status(), 200);
    let hsts = health
        .headers()
        .get("strict-transport-security")
        .map(|v| v.to_str().unwrap().to_string());
    assert!(
        hsts.as_deref()
            .is_some_and(|v| v.contains("max-age=") && !v.contains("max-age=0")),
        "HSTS: {hsts:?}"
    );
    assert_eq!(
        health.headers().get("x-content-type-options").unwrap(),
        "nosniff"
    );
    assert!(health.headers().get("content-security-policy").is_some());
    assert_eq!(
        health.json::<serde_json::Value>().await.unwrap()["status"],
        "ok"
    );
    tls.get(format!("{base}/readyz"))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();

    // The plain listener only redirects, keeping path and query.
    let plain = client();
    let r = plain
        .get(format!("http://127.0.0.1:{http}/api/v1/auth/me?x=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 308);
    assert_eq!(
        r.headers().get("location").unwrap(),
        &format!("https://127.0.0.1:{https}/api/v1/auth/me?x=1")
    );
    let r = plain
        .post(format!("http://127.0.0.1:{http}/api/v1/auth/login"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        308,
        "unsafe methods are redirected too, never served in clear"
    );

    // The printed logins work over HTTPS and get a __Host- cookie.
    let logins = std::fs::read_to_string(dir.path().join("data/logins.txt")).unwrap();
    let line = logins
        .lines()
        .find(|l| l.starts_with("platform owner"))
        .expect("platform owner login");
    let mut parts = line.rsplitn(3, " | ");
    let (password, email) = (parts.next().unwrap(), parts.next().unwrap());
    let r = tls
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({ "email": email, "password": password }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let cookie = r
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(cookie.starts_with("__Host-omnihub_session="), "{cookie}");
    for attr in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attr), "{attr} missing from {cookie}");
    }

    // The client owner's inbox fills from every messenger and the mailbox within 10 s of the
    // start.
    let line = logins
        .lines()
        .find(|l| l.starts_with("client owner"))
        .expect("client owner login");
    let mut parts = line.rsplitn(3, " | ");
    let (password, email) = (parts.next().unwrap(), parts.next().unwrap());
    let r = tls
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({ "email": email, "password": password }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let session = r.headers().get("set-cookie").unwrap().to_str().unwrap();
    let session = session.split(';').next().unwrap().to_string();
    let csrf = r.json::<serde_json::Value>().await.unwrap()["csrf_token"]
        .as_str()
        .unwrap()
        .to_string();
    let get = async |path: &str| -> serde_json::Value {
        tls.get(format!("{base}{path}"))
            .header("cookie", &session)
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap()
            .json()
            .await
            .unwrap()
    };
    let messengers = ["telegram", "whatsapp", "vk", "viber", "max", "email"];
    loop {
        // The demo connects its messenger channels once it is listening: read them each time.
        let channels = get("/api/v1/channels").await;
        let provider_of = |id: &serde_json::Value| {
            channels["items"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["id"] == *id)
                .map(|c| c["provider"].as_str().unwrap().to_string())
        };
        let page = get("/api/v1/conversations?limit=100").await;
        let seen: std::collections::BTreeSet<String> = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|s| provider_of(&s["conversation"]["channel_id"]))
            .collect();
        if messengers.iter().all(|p| seen.contains(*p)) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "after 10 s the inbox holds conversations of {seen:?} only:\n{}",
            output()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The sandbox page: a customer writes on every channel through its fake (by e-mail, a
    // letter into the mailbox), the message lands in the inbox, and the owner's reply shows on
    // the page as the customer receives it (by e-mail, the mail omnihub sent through SMTP).
    let page = format!("http://127.0.0.1:{sandbox}");
    let html = plain.get(format!("{page}/")).send().await.unwrap();
    assert_eq!(html.status(), 200);
    assert!(
        html.headers()
            .get("content-security-policy")
            .is_some_and(|v| v.to_str().unwrap().contains("script-src 'self'"))
    );
    let providers: Vec<String> = plain
        .get(format!("{page}/api/providers"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(providers, messengers);
    let text = "Пишу со страницы песочницы";
    for provider in messengers {
        let r = plain
            .post(format!("{page}/api/say"))
            .json(&json!({ "provider": provider, "customer": "Sandbox Sam", "text": format!("{text} ({provider})") }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204, "{provider}: {}", r.text().await.unwrap());
    }
    for bad in [
        json!({ "provider": "sms", "customer": "Sam", "text": "x" }),
        json!({ "provider": "telegram", "customer": "", "text": "x" }),
        json!({ "provider": "telegram", "customer": "Sam", "text": "  " }),
        json!({ "provider": "telegram", "customer": "Sam\u{7}", "text": "x" }),
    ] {
        let r = plain
            .post(format!("{page}/api/say"))
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{bad}");
    }
    let post = async |path: &str, body: serde_json::Value| {
        let r = tls
            .post(format!("{base}{path}"))
            .header("cookie", &session)
            .header("x-csrf-token", &csrf)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.text().await.unwrap())
    };
    for provider in messengers {
        let wanted = format!("{text} ({provider})");
        let conversation = loop {
            let page = get("/api/v1/conversations?limit=200").await;
            let found = page["items"]
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["last_message_text"].as_str() == Some(wanted.as_str()));
            if let Some(s) = found {
                break s["conversation"]["id"].as_str().unwrap().to_string();
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the sandbox page's {provider} message never reached the inbox:\n{}",
                output()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let reply = format!("Ответ для {provider}");
        let (status, answer) = post(
            &format!("/api/v1/conversations/{conversation}/messages"),
            json!({ "text": reply, "idempotency_key": format!("sandbox-{provider}") }),
        )
        .await;
        assert!((200..300).contains(&status), "{status}: {answer}");
        loop {
            let replies: serde_json::Value = plain
                .get(format!("{page}/api/replies"))
                .query(&[("provider", provider), ("customer", "Sandbox Sam")])
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if replies["replies"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r == reply.as_str())
            {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the {provider} reply never reached the sandbox page: {replies}\n{}",
                output()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    // The client's social profiles on every network are connected and active, and comments
    // under their posts reach the inbox, from the networks beyond VK and OK too (Meta's
    // application callback, X's webhook, YouTube's polling).
    let networks = ["vk", "ok", "facebook", "instagram", "x", "youtube"];
    let newer = ["facebook", "instagram", "x", "youtube"];
    loop {
        let profiles = get("/api/v1/social/profiles").await;
        let profiles = profiles["items"].as_array().unwrap();
        let network_of = |id: &serde_json::Value| {
            profiles
                .iter()
                .find(|p| p["id"] == *id)
                .map(|p| p["network"].as_str().unwrap().to_string())
        };
        let active: std::collections::BTreeSet<&str> = profiles
            .iter()
            .filter(|p| p["status"] == "active")
            .map(|p| p["network"].as_str().unwrap())
            .collect();
        let page = get("/api/v1/conversations?limit=200").await;
        let commented: std::collections::BTreeSet<String> = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|s| network_of(&s["conversation"]["channel_id"]))
            .collect();
        if networks.iter().all(|n| active.contains(n))
            && newer.iter().any(|n| commented.contains(*n))
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "profiles active on {active:?}, comments in the inbox from {commented:?} only:\n{}",
            output()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    drop(child);
}

#[test]
fn config_check_names_an_unknown_key() {
    let dir = TempDir::new("config-check");
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "[server]\nlisten = \"127.0.0.1:9443\"\nlisten_backlog_typo = 5\n",
    )
    .unwrap();
    let out = run(omnihub().args(["config", "check", "--config"]).arg(&path));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "accepted an unknown key: {stderr}");
    assert!(
        stderr.contains("listen_backlog_typo"),
        "the error does not name the key: {stderr}"
    );

    let path = dir.path().join("unknown-section.toml");
    std::fs::write(&path, "[serverr]\nlisten = \"127.0.0.1:9443\"\n").unwrap();
    let out = run(omnihub().args(["config", "check", "--config"]).arg(&path));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("serverr"));

    // A valid file passes and its secret is printed masked.
    let key = String::from_utf8(run(omnihub().args(["config", "gen-key"])).stdout)
        .unwrap()
        .trim()
        .to_string();
    let path = dir.path().join("good.toml");
    std::fs::write(
        &path,
        format!("[tls]\nmode = \"self_signed\"\n\n[security]\nsecret_key = \"{key}\"\n"),
    )
    .unwrap();
    let out = run(omnihub().args(["config", "check", "--config"]).arg(&path));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !stdout.contains(&key) && stdout.contains("***"),
        "the secret key is printed: {stdout}"
    );
}

#[test]
fn config_default_is_the_checked_in_example() {
    let out = run(omnihub().args(["config", "default"]));
    assert!(out.status.success());
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/omnihub.example.toml");
    let expected = std::fs::read_to_string(&example).unwrap();
    let printed = String::from_utf8(out.stdout).unwrap();
    assert!(
        printed == expected,
        "`omnihub config default` differs from {}; regenerate it",
        example.display()
    );
}
