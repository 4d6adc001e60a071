//! Bad input gets a clear error with a stable code, in the documented shape, and changes
//! nothing: every case compares a snapshot of the whole store before and after.

use actix_web::http::Method;
use actix_web::http::header;
use actix_web::test::TestRequest;
use chrono::{Duration, Utc};
use omnihub::auth::tokens;
use omnihub_store::{NewApiToken, Session};
use serde_json::json;

use crate::support::*;

/// Sends a raw body with a content type as `who`.
fn raw(
    w: &World,
    who: Who<'_>,
    method: Method,
    uri: &str,
    content_type: Option<&str>,
    body: &str,
) -> TestRequest {
    let req = w.request(who, method, uri).set_payload(body.to_string());
    match content_type {
        Some(ct) => req.insert_header((header::CONTENT_TYPE, ct.to_string())),
        None => req,
    }
}

#[actix_web::test]
async fn malformed_json_is_invalid_json_and_changes_nothing() {
    let w = World::new("malformed").await;
    let before = w.snapshot().await;
    let owner = w.a.owner.who();
    let plain = format!("/api/v1/employees/{}", w.a.plain.user.id);
    let cases: Vec<(Who<'_>, Method, String)> = vec![
        (owner, Method::POST, "/api/v1/groups".into()),
        (owner, Method::POST, "/api/v1/channels".into()),
        (owner, Method::POST, "/api/v1/invites".into()),
        (owner, Method::POST, "/api/v1/tokens".into()),
        (owner, Method::PATCH, plain.clone()),
        (owner, Method::PUT, format!("{plain}/channels")),
        (
            owner,
            Method::PATCH,
            format!("/api/v1/groups/{}", w.a.group.id),
        ),
        (
            w.platform_owner.who(),
            Method::POST,
            "/api/v1/platform/clients".into(),
        ),
        (
            w.platform_owner.who(),
            Method::POST,
            format!("/api/v1/platform/clients/{}/block", w.a.client.id),
        ),
        (
            Who::Anon(fresh_ip()),
            Method::POST,
            "/api/v1/auth/login".into(),
        ),
    ];
    for body in [
        r#"{"name": "#,
        "{name: 'x'}",
        "[1, 2",
        "\u{0}",
        r#"{"name": "x"} trailing"#,
    ] {
        for (who, method, uri) in &cases {
            let r = w
                .send(raw(
                    &w,
                    *who,
                    method.clone(),
                    uri,
                    Some("application/json"),
                    body,
                ))
                .await;
            r.assert_error(400, "invalid_json");
        }
    }
    // Well-formed JSON of the wrong shape is refused the same way.
    for body in [
        json!("Alpha Team 2"),
        json!({ "name": 5 }),
        json!({ "name": null }),
        json!(null),
        json!({}),
    ] {
        w.post(owner, "/api/v1/groups", body)
            .await
            .assert_error(400, "invalid_json");
    }
    assert_eq!(
        w.snapshot().await,
        before,
        "a malformed request changed the store"
    );
}

#[actix_web::test]
async fn unknown_fields_are_rejected_by_name() {
    let w = World::new("unknown-field").await;
    let before = w.snapshot().await;
    let owner = w.a.owner.who();
    let cases = [
        (
            "/api/v1/groups",
            Method::POST,
            json!({ "name": "Alpha Extra", "colour": "red" }),
            "colour",
        ),
        (
            "/api/v1/channels",
            Method::POST,
            json!({ "kind": "messaging", "provider": "api", "name": "x", "owner_id": w.b.owner.user.id }),
            "owner_id",
        ),
        (
            "/api/v1/invites",
            Method::POST,
            json!({ "email": "new@alpha.test", "role": "client_owner" }),
            "role",
        ),
        (
            "/api/v1/tokens",
            Method::POST,
            json!({ "name": "t", "scopes": ["all"] }),
            "scopes",
        ),
        (
            "/api/v1/auth/profile",
            Method::PATCH,
            json!({ "display_name": "x", "role": "platform_owner" }),
            "role",
        ),
    ];
    for (uri, method, body, field) in cases {
        let r = w.call(owner, method, uri, Some(body)).await;
        r.assert_error(400, "invalid_json");
        let message = r.json()["message"].as_str().unwrap().to_string();
        assert!(
            message.contains(field),
            "{uri}: the message {message:?} does not name `{field}`"
        );
    }
    let employee = format!("/api/v1/employees/{}", w.a.plain.user.id);
    let r = w
        .patch(
            owner,
            &employee,
            json!({ "display_name": "x", "is_admin": true }),
        )
        .await;
    r.assert_error(400, "invalid_json");
    assert!(r.text().contains("is_admin"), "{}", r.text());
    let r = w
        .post(
            Who::Anon(fresh_ip()),
            "/api/v1/auth/login",
            json!({ "email": w.a.owner.email(), "password": PASSWORD, "remember": true }),
        )
        .await;
    r.assert_error(400, "invalid_json");
    assert!(r.text().contains("remember"), "{}", r.text());
    // Unknown query parameters and unknown enum values are named as well.
    let r = w.get(owner, "/api/v1/audit?limit=5&sort=asc").await;
    r.assert_error(400, "invalid_parameter");
    assert!(r.text().contains("sort"), "{}", r.text());
    let r = w
        .post(
            owner,
            "/api/v1/channels",
            json!({ "kind": "messaging", "provider": "myspace", "name": "x" }),
        )
        .await;
    r.assert_error(400, "invalid_json");
    assert!(r.text().contains("myspace"), "{}", r.text());
    let r = w
        .put(
            owner,
            &format!("{employee}/channels"),
            json!({ "grants": [{ "channel_id": w.a.channel.id, "rights": ["read", "root"] }] }),
        )
        .await;
    r.assert_error(400, "invalid_json");
    assert!(r.text().contains("root"), "{}", r.text());
    assert_eq!(w.snapshot().await, before);
}

#[actix_web::test]
async fn wrong_content_type_is_415() {
    let w = World::new("content-type").await;
    let before = w.snapshot().await;
    let owner = w.a.owner.who();
    let body = r#"{"name": "Alpha Plain Text"}"#;
    for ct in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        None,
    ] {
        let r = w
            .send(raw(&w, owner, Method::POST, "/api/v1/groups", ct, body))
            .await;
        r.assert_error(415, "unsupported_media_type");
        let r = w
            .send(raw(
                &w,
                Who::Anon(fresh_ip()),
                Method::POST,
                "/api/v1/auth/login",
                ct,
                r#"{"email":"a@b.test","password":"x"}"#,
            ))
            .await;
        r.assert_error(415, "unsupported_media_type");
    }
    assert_eq!(w.snapshot().await, before);
}

#[actix_web::test]
async fn bodies_over_the_limit_are_413() {
    let w = World::new("too-large").await;
    let limit = w.config.server.max_body_bytes;
    let before = w.snapshot().await;
    let big = "x".repeat(limit + 1);
    let cases = [
        (w.a.owner.who(), "/api/v1/groups", json!({ "name": big })),
        (
            w.platform_owner.who(),
            "/api/v1/platform/clients",
            json!({ "name": big, "owner_email": "big@big.test", "owner_name": "Big" }),
        ),
        (
            Who::Anon(fresh_ip()),
            "/api/v1/auth/login",
            json!({ "email": "big@big.test", "password": big }),
        ),
    ];
    for (who, uri, body) in cases {
        let r = w.post(who, uri, body).await;
        r.assert_error(413, "payload_too_large");
        assert!(
            r.text().contains(&limit.to_string()),
            "the message should state the limit: {}",
            r.text()
        );
    }
    // Just under the limit is parsed (and then validated: the name is too long).
    let fits = "x".repeat(limit - 64);
    let r = w
        .post(w.a.owner.who(), "/api/v1/groups", json!({ "name": fits }))
        .await;
    r.assert_error(400, "validation_failed");
    assert_eq!(w.snapshot().await, before);
}

#[actix_web::test]
async fn invalid_ids_in_paths_are_400() {
    let w = World::new("bad-ids").await;
    let before = w.snapshot().await;
    let owner = w.a.owner.who();
    let root = w.platform_owner.who();
    for bad in [
        "not-a-uuid",
        "123",
        "00000000-0000-0000-0000-00000000000g",
        "%20",
    ] {
        let cases: Vec<(Who<'_>, Method, String, Option<serde_json::Value>)> = vec![
            (owner, Method::GET, format!("/api/v1/employees/{bad}"), None),
            (
                owner,
                Method::PATCH,
                format!("/api/v1/employees/{bad}"),
                Some(json!({ "display_name": "x" })),
            ),
            (
                owner,
                Method::DELETE,
                format!("/api/v1/employees/{bad}"),
                None,
            ),
            (
                owner,
                Method::PUT,
                format!("/api/v1/employees/{bad}/channels"),
                Some(json!({ "grants": [] })),
            ),
            (owner, Method::GET, format!("/api/v1/groups/{bad}"), None),
            (
                owner,
                Method::PATCH,
                format!("/api/v1/groups/{bad}"),
                Some(json!({ "name": "x" })),
            ),
            (owner, Method::DELETE, format!("/api/v1/groups/{bad}"), None),
            (
                owner,
                Method::PUT,
                format!("/api/v1/groups/{bad}/members"),
                Some(json!({ "member_ids": [] })),
            ),
            (owner, Method::GET, format!("/api/v1/channels/{bad}"), None),
            (
                owner,
                Method::PATCH,
                format!("/api/v1/channels/{bad}"),
                Some(json!({ "name": "x" })),
            ),
            (
                owner,
                Method::DELETE,
                format!("/api/v1/channels/{bad}"),
                None,
            ),
            (
                owner,
                Method::DELETE,
                format!("/api/v1/invites/{bad}"),
                None,
            ),
            (owner, Method::DELETE, format!("/api/v1/tokens/{bad}"), None),
            (
                owner,
                Method::GET,
                format!("/api/v1/audit?actor_id={bad}"),
                None,
            ),
            (
                root,
                Method::GET,
                format!("/api/v1/platform/clients/{bad}"),
                None,
            ),
            (
                root,
                Method::POST,
                format!("/api/v1/platform/clients/{bad}/block"),
                Some(json!({ "reason": "x" })),
            ),
            (
                root,
                Method::POST,
                format!("/api/v1/platform/clients/{bad}/unblock"),
                None,
            ),
            (
                root,
                Method::DELETE,
                format!("/api/v1/platform/moderators/{bad}"),
                None,
            ),
        ];
        for (who, method, uri, body) in cases {
            let r = w.call(who, method.clone(), &uri, body).await;
            assert_eq!(r.status, 400, "{method} {uri}: {}", r.text());
            r.assert_error(400, "invalid_parameter");
        }
    }
    // Ids in bodies are checked too: a malformed one is malformed JSON for the route.
    let r = w
        .put(
            owner,
            &format!("/api/v1/groups/{}/members", w.a.group.id),
            json!({ "member_ids": ["nope"] }),
        )
        .await;
    r.assert_error(400, "invalid_json");
    assert_eq!(w.snapshot().await, before);
}

#[actix_web::test]
async fn unknown_routes_are_json_404_with_security_headers() {
    let w = World::new("unknown-route").await;
    let anon = Who::Anon(fresh_ip());
    for (who, method, uri) in [
        (anon, Method::GET, "/api/v1/nope"),
        (anon, Method::POST, "/api/v1/nope"),
        (anon, Method::GET, "/hooks/nope"),
        (anon, Method::GET, "/api/v2/employees"),
        (w.a.owner.who(), Method::GET, "/api/v1/employees/x/y/z"),
        (w.a.owner.who(), Method::DELETE, "/api/v1/clients"),
    ] {
        let r = w.call(who, method.clone(), uri, None).await;
        assert_eq!(r.status, 404, "{method} {uri}: {}", r.text());
        r.assert_error(404, "not_found");
        assert_eq!(
            r.header("x-content-type-options").as_deref(),
            Some("nosniff")
        );
        assert!(
            r.header("content-security-policy")
                .unwrap_or_default()
                .contains("frame-ancestors 'none'")
        );
    }
    // Any other address is a page of the web console (its router decides), under the same CSP.
    let page = w.call(anon, Method::GET, "/nope", None).await;
    assert_eq!(page.status, 200, "{}", page.text());
    assert!(
        page.header("content-type")
            .unwrap_or_default()
            .starts_with("text/html")
    );
    assert!(
        page.header("content-security-policy")
            .unwrap_or_default()
            .contains("script-src 'self'")
    );
    // A known path with a method it does not have is an error in the same JSON shape.
    for (method, uri) in [
        (Method::PUT, "/api/v1/groups"),
        (Method::POST, "/api/v1/audit"),
        (Method::DELETE, "/healthz"),
    ] {
        let r = w.call(w.a.owner.who(), method.clone(), uri, None).await;
        assert!(
            matches!(r.status, 404 | 405),
            "{method} {uri}: {} {}",
            r.status,
            r.text()
        );
        r.assert_error_shape();
    }
}

#[actix_web::test]
async fn forged_expired_and_revoked_credentials_are_401_and_change_nothing() {
    let w = World::new("forged").await;
    let ip = fresh_ip();
    let now = Utc::now();

    // An expired token and an expired session, straight in the store.
    let expired_token = tokens::new_api_token();
    w.store
        .create_api_token(&NewApiToken {
            client_id: w.a.client.id,
            user_id: w.a.owner.user.id,
            name: "expired".into(),
            prefix: expired_token.chars().take(12).collect(),
            token_hash: tokens::hash(&expired_token),
            expires_at: Some(now - Duration::minutes(1)),
        })
        .await
        .unwrap();
    let expired_cookie = tokens::random_secret();
    let expired_session = Sess {
        cookie: expired_cookie.clone(),
        csrf: "csrf".into(),
    };
    w.store
        .create_session(&Session {
            token_hash: tokens::hash(&expired_cookie),
            user_id: w.a.owner.user.id,
            csrf_token: "csrf".into(),
            created_at: now - Duration::hours(2),
            expires_at: now - Duration::minutes(1),
            last_seen_at: now - Duration::hours(1),
            ip: None,
            user_agent: None,
        })
        .await
        .unwrap();
    // A revoked token: made and revoked through the API, working in between.
    let r = w
        .post(
            w.a.owner.who(),
            "/api/v1/tokens",
            json!({ "name": "soon revoked" }),
        )
        .await
        .assert_status(201)
        .clone();
    let revoked = r.json()["token"].as_str().unwrap().to_string();
    let revoked_id = r.json()["id"].as_str().unwrap().to_string();
    w.get(Who::Token(&revoked, ip), "/api/v1/employees")
        .await
        .assert_status(200);
    w.delete(w.a.owner.who(), &format!("/api/v1/tokens/{revoked_id}"))
        .await
        .assert_status(204);
    // A cookie whose session was signed out.
    let gone = w.new_session(&w.a.owner).await;
    w.call(
        Who::Cookie(&gone, ip),
        Method::POST,
        "/api/v1/auth/logout",
        None,
    )
    .await
    .assert_status(204);

    let before = w.snapshot().await;
    let forged_token = tokens::new_api_token();
    let forged_cookie = Sess {
        cookie: tokens::random_secret(),
        csrf: "csrf".into(),
    };
    let real = w.a.owner.session();
    let tampered = Sess {
        cookie: format!("{}x", real.cookie),
        csrf: real.csrf.clone(),
    };
    let whos: Vec<(&str, Who<'_>)> = vec![
        ("forged token", Who::Token(&forged_token, ip)),
        ("expired token", Who::Token(&expired_token, ip)),
        ("revoked token", Who::Token(&revoked, ip)),
        ("token without the omh_ prefix", Who::Token("abcdef", ip)),
        ("forged cookie", Who::Cookie(&forged_cookie, ip)),
        ("tampered cookie", Who::Cookie(&tampered, ip)),
        ("expired session", Who::Cookie(&expired_session, ip)),
        ("signed-out session", Who::Cookie(&gone, ip)),
    ];
    for (what, who) in whos {
        for (method, uri, body) in [
            (Method::GET, "/api/v1/auth/me".to_string(), None),
            (Method::GET, "/api/v1/employees".to_string(), None),
            (
                Method::POST,
                "/api/v1/groups".to_string(),
                Some(json!({ "name": "Alpha Intruders" })),
            ),
            (
                Method::DELETE,
                format!("/api/v1/channels/{}", w.a.channel.id),
                None,
            ),
            (
                Method::PATCH,
                format!("/api/v1/employees/{}", w.a.plain.user.id),
                Some(json!({ "disabled": true })),
            ),
        ] {
            let r = w.call(who, method.clone(), &uri, body).await;
            assert_eq!(r.status, 401, "{what}: {method} {uri}: {}", r.text());
            r.assert_error(401, "unauthenticated");
        }
    }
    // Other Authorization schemes are refused, not ignored in favour of the cookie.
    for value in ["Basic b3duZXI6cGFzcw==", "Bearer", "Token omh_x"] {
        let req = w
            .request(w.a.owner.who(), Method::GET, "/api/v1/employees")
            .insert_header((header::AUTHORIZATION, value));
        w.send(req).await.assert_error(401, "unauthenticated");
    }
    assert_eq!(
        w.snapshot().await,
        before,
        "a refused credential changed the store"
    );
}

#[actix_web::test]
async fn unsafe_cookie_requests_need_the_csrf_header() {
    let w = World::new("csrf").await;
    let owner = &w.a.owner;
    let s = owner.session();
    let other = w.new_session(owner).await;
    let before = w.snapshot().await;
    let cookie_only = |method: Method, uri: &str| {
        w.request(Who::Anon(owner.ip), method, uri)
            .cookie(actix_web::cookie::Cookie::new(
                w.cookie_name(),
                s.cookie.clone(),
            ))
    };
    let group = format!("/api/v1/groups/{}", w.a.group.id);
    let cases: Vec<(Method, String, serde_json::Value)> = vec![
        (
            Method::POST,
            "/api/v1/groups".into(),
            json!({ "name": "Alpha CSRF" }),
        ),
        (
            Method::PATCH,
            group.clone(),
            json!({ "name": "Alpha CSRF" }),
        ),
        (Method::DELETE, group.clone(), json!(null)),
        (
            Method::PUT,
            format!("{group}/members"),
            json!({ "member_ids": [] }),
        ),
        (Method::POST, "/api/v1/auth/logout".into(), json!(null)),
        (
            Method::POST,
            "/api/v1/auth/password".into(),
            json!({ "current_password": PASSWORD, "new_password": "csrf csrf csrf csrf" }),
        ),
    ];
    for (method, uri, body) in &cases {
        for header_value in [
            None,
            Some(""),
            Some("wrong"),
            Some(other.csrf.as_str()),
            Some(&s.csrf[..s.csrf.len() - 1]),
        ] {
            let mut req = cookie_only(method.clone(), uri);
            if !body.is_null() {
                req = req.set_json(body.clone());
            }
            if let Some(v) = header_value {
                req = req.insert_header(("X-CSRF-Token", v.to_string()));
            }
            let r = w.send(req).await;
            assert_eq!(
                r.status,
                403,
                "{method} {uri} with CSRF {header_value:?}: {}",
                r.text()
            );
            r.assert_error(403, "csrf_failed");
        }
    }
    assert_eq!(
        w.snapshot().await,
        before,
        "a request without its CSRF token changed the store"
    );
    // Safe methods need none, and the right header passes.
    w.send(cookie_only(Method::GET, "/api/v1/groups"))
        .await
        .assert_status(200);
    let r = w
        .send(
            cookie_only(Method::POST, "/api/v1/groups")
                .set_json(json!({ "name": "Alpha CSRF" }))
                .insert_header(("X-CSRF-Token", s.csrf.clone())),
        )
        .await;
    r.assert_status(201);
    // A token needs no CSRF header: browsers never send it on their own.
    w.post(
        w.a.token_who(),
        "/api/v1/groups",
        json!({ "name": "Alpha Token Group" }),
    )
    .await
    .assert_status(201);
}

#[actix_web::test]
async fn validation_errors_are_400_and_change_nothing() {
    let w = World::new("validation").await;
    let before = w.snapshot().await;
    let owner = w.a.owner.who();
    let employee = format!("/api/v1/employees/{}", w.a.plain.user.id);
    let cases: Vec<(Method, String, serde_json::Value)> = vec![
        (
            Method::POST,
            "/api/v1/groups".into(),
            json!({ "name": "   " }),
        ),
        (
            Method::POST,
            "/api/v1/groups".into(),
            json!({ "name": "bad\u{7}name" }),
        ),
        (
            Method::POST,
            "/api/v1/channels".into(),
            json!({ "kind": "social", "provider": "telegram", "name": "x" }),
        ),
        (
            Method::POST,
            "/api/v1/channels".into(),
            json!({ "kind": "messaging", "provider": "api", "name": "x", "settings": [1] }),
        ),
        (
            Method::POST,
            "/api/v1/invites".into(),
            json!({ "email": "not-an-address" }),
        ),
        (
            Method::POST,
            "/api/v1/tokens".into(),
            json!({ "name": "t", "expires_in_days": 0 }),
        ),
        (
            Method::POST,
            "/api/v1/tokens".into(),
            json!({ "name": "t", "expires_in_days": 100000 }),
        ),
        (Method::PATCH, employee.clone(), json!({})),
        (
            Method::PATCH,
            employee.clone(),
            json!({ "role": "client_owner", "global_rights": ["billing"] }),
        ),
        (
            Method::PUT,
            format!("{employee}/channels"),
            json!({ "grants": [{ "channel_id": w.a.channel.id, "rights": [] }] }),
        ),
        (
            Method::PATCH,
            "/api/v1/auth/profile".into(),
            json!({ "locale": "de" }),
        ),
        (
            Method::POST,
            "/api/v1/auth/password".into(),
            json!({ "current_password": PASSWORD, "new_password": "short" }),
        ),
    ];
    for (method, uri, body) in cases {
        let r = w
            .call(owner, method.clone(), &uri, Some(body.clone()))
            .await;
        assert_eq!(r.status, 400, "{method} {uri} {body}: {}", r.text());
        r.assert_error(400, "validation_failed");
    }
    let r = w
        .post(
            w.platform_owner.who(),
            "/api/v1/platform/clients",
            json!({ "name": "X", "owner_email": "x", "owner_name": "X" }),
        )
        .await;
    r.assert_error(400, "validation_failed");
    assert_eq!(w.snapshot().await, before);
}

#[actix_web::test]
async fn error_messages_speak_the_accept_language() {
    let w = World::new("accept-language").await;
    let owner = w.a.owner.who();
    let profile = "/api/v1/auth/profile";
    let ask = |lang: Option<&str>, body: serde_json::Value| {
        let req = w.request(owner, Method::PATCH, profile).set_json(body);
        match lang {
            Some(l) => req.insert_header((header::ACCEPT_LANGUAGE, l.to_string())),
            None => req,
        }
    };
    let cyrillic = |s: &str| s.chars().any(|c| ('\u{0400}'..='\u{04FF}').contains(&c));
    for (body, code, verbatim) in [
        (
            json!({ "display_name": "   " }),
            "validation_failed",
            "`display_name`",
        ),
        // serde's own words (the unknown field's name) stay as they are inside the sentence.
        (
            json!({ "role": "platform_owner" }),
            "invalid_json",
            "unknown field `role`",
        ),
    ] {
        let ru = w.send(ask(Some("ru-RU,ru;q=0.9"), body.clone())).await;
        let en = w.send(ask(Some("en"), body.clone())).await;
        let default = w.send(ask(None, body)).await;
        for r in [&ru, &en, &default] {
            r.assert_error(400, code);
        }
        let message = |r: &Resp| r.json()["message"].as_str().unwrap().to_string();
        let (ru_text, en_text) = (message(&ru), message(&en));
        assert!(
            cyrillic(&ru_text) && ru_text.contains(verbatim),
            "{ru_text}"
        );
        assert!(
            !cyrillic(&en_text) && en_text.contains(verbatim),
            "{en_text}"
        );
        assert_eq!(
            message(&default),
            en_text,
            "English without Accept-Language"
        );
        assert_eq!(ru.header("content-language").as_deref(), Some("ru"));
        assert_eq!(en.header("content-language").as_deref(), Some("en"));
    }
}

#[actix_web::test]
async fn request_ids_are_echoed_only_when_plain() {
    let w = World::new("request-id").await;
    let anon = Who::Anon(fresh_ip());
    let req = w
        .request(anon, Method::GET, "/api/v1/nope")
        .insert_header(("X-Request-Id", "trace-42_abc"));
    let r = w.send(req).await;
    r.assert_error(404, "not_found");
    assert_eq!(r.header("x-request-id").as_deref(), Some("trace-42_abc"));
    for hostile in ["a b", "x\"y", &"z".repeat(65)] {
        let req = w
            .request(anon, Method::GET, "/api/v1/nope")
            .insert_header(("X-Request-Id", hostile.to_string()));
        let r = w.send(req).await;
        r.assert_error(404, "not_found");
        assert_ne!(r.header("x-request-id").as_deref(), Some(hostile));
    }
    // Successful answers carry one too, and two requests never share it.
    let a = w
        .get(anon, "/healthz")
        .await
        .header("x-request-id")
        .unwrap();
    let b = w
        .get(anon, "/healthz")
        .await
        .header("x-request-id")
        .unwrap();
    assert!(!a.is_empty() && a != b);
}
