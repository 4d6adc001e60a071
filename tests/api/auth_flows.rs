//! Authentication and account flows end to end: cookies, lockout, throttling, the second factor,
//! revocation of sessions and tokens, password reset by e-mail, invitations, blocked clients —
//! and the audit trail each of them leaves in its client's log.

use std::time::Duration;

use actix_web::cookie::SameSite;
use actix_web::http::Method;
use serde_json::{Value, json};

use crate::support::*;

#[track_caller]
fn assert_audited(actions: &[String], expected: &[&str]) {
    for e in expected {
        assert!(
            actions.iter().any(|a| a == e),
            "`{e}` is missing from the audit log {actions:?}"
        );
    }
}

fn items(r: &Resp) -> Vec<Value> {
    r.json()["items"].as_array().cloned().unwrap_or_default()
}

#[actix_web::test]
async fn login_sets_a_hardened_session_cookie() {
    for secure in [false, true] {
        let options = Options {
            cookie_secure: secure,
            ..Options::default()
        };
        let w = World::with(
            if secure {
                "cookie-secure"
            } else {
                "cookie-plain"
            },
            options,
        )
        .await;
        let ip = fresh_ip();
        let r = w.login(w.a.plain.email(), PASSWORD, ip, None).await;
        r.assert_status(200);
        let name = if secure {
            "__Host-omnihub_session"
        } else {
            "omnihub_session"
        };
        assert_eq!(w.cookie_name(), name);
        let c = r
            .cookie(name)
            .unwrap_or_else(|| panic!("no {name} cookie: {:?}", r.cookies));
        assert_eq!(c.http_only(), Some(true), "{c}");
        assert_eq!(c.same_site(), Some(SameSite::Strict), "{c}");
        assert_eq!(c.secure().unwrap_or(false), secure, "{c}");
        assert_eq!(c.path(), Some("/"), "{c}");
        assert_eq!(c.domain(), None, "a __Host- cookie must be host-only: {c}");
        assert!(c.max_age().is_some_and(|a| a.whole_seconds() > 0), "{c}");
        let body = r.json();
        assert_eq!(body["user"]["email"], w.a.plain.email());
        assert!(body["user"].get("password_hash").is_none());
        assert!(
            !r.text().contains(c.value()),
            "the session secret must only be in the cookie"
        );
        assert_eq!(r.header("cache-control").as_deref(), Some("no-store"));

        let s = Sess::from_login(&r, name);
        let me = w.get(Who::Cookie(&s, ip), "/api/v1/auth/me").await;
        me.assert_status(200);
        assert_eq!(me.json()["user_id"], json!(w.a.plain.user.id));
        assert_eq!(me.json()["csrf_token"], json!(s.csrf));

        // Sign-out ends exactly this session and clears the cookie.
        let out = w
            .call(
                Who::Cookie(&s, ip),
                Method::POST,
                "/api/v1/auth/logout",
                None,
            )
            .await;
        out.assert_status(204);
        let cleared = out.cookie(name).expect("removal cookie");
        assert!(
            cleared.value().is_empty() && cleared.max_age().is_some_and(|a| a.whole_seconds() <= 0),
            "{cleared}"
        );
        w.get(Who::Cookie(&s, ip), "/api/v1/auth/me")
            .await
            .assert_error(401, "unauthenticated");
        w.get(w.a.plain.who(), "/api/v1/auth/me")
            .await
            .assert_status(200);
    }
}

#[actix_web::test]
async fn wrong_passwords_lock_the_account() {
    let w = World::with(
        "lockout",
        Options {
            login_max_failures: 3,
            ..Options::default()
        },
    )
    .await;
    let email = w.a.plain.email();
    let ip = fresh_ip();
    // A success in between resets the count.
    for _ in 0..2 {
        w.login(email, "wrong password!!", ip, None)
            .await
            .assert_error(401, "invalid_credentials");
    }
    w.login(email, PASSWORD, ip, None).await.assert_status(200);
    for _ in 0..2 {
        w.login(email, "wrong password!!", ip, None)
            .await
            .assert_error(401, "invalid_credentials");
    }
    // The third failure in a row locks the account.
    let third = w.login(email, "wrong password!!", ip, None).await;
    assert!(matches!(third.status, 401 | 423), "{}", third.text());
    third.assert_error_shape();
    for from in [ip, fresh_ip()] {
        let r = w.login(email, PASSWORD, from, None).await;
        r.assert_error(423, "account_locked");
        let retry: u64 = r
            .header("retry-after")
            .expect("Retry-After")
            .parse()
            .unwrap();
        assert!((1..=15 * 60).contains(&retry), "Retry-After {retry}");
    }
    // Other accounts are not affected; unknown addresses answer like wrong passwords.
    w.login(w.a.owner.email(), PASSWORD, fresh_ip(), None)
        .await
        .assert_status(200);
    for _ in 0..4 {
        w.login("nobody@alpha.test", PASSWORD, fresh_ip(), None)
            .await
            .assert_error(401, "invalid_credentials");
    }
    // The existing session of the locked user is not the lock's business.
    w.get(w.a.plain.who(), "/api/v1/auth/me")
        .await
        .assert_status(200);
}

#[actix_web::test]
async fn sign_in_is_throttled_per_ip() {
    let w = World::with(
        "throttle",
        Options {
            login_attempts_per_minute: 5,
            ..Options::default()
        },
    )
    .await;
    let ip = fresh_ip();
    for _ in 0..5 {
        w.login("nobody@nowhere.test", PASSWORD, ip, None)
            .await
            .assert_error(401, "invalid_credentials");
    }
    let r = w.login(w.a.owner.email(), PASSWORD, ip, None).await;
    r.assert_error(429, "rate_limited");
    let retry: u64 = r
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    // The other unauthenticated entry points share the budget.
    let r = w
        .post(
            Who::Anon(ip),
            "/api/v1/auth/password-reset",
            json!({ "email": w.a.owner.email() }),
        )
        .await;
    r.assert_error(429, "rate_limited");
    let r = w
        .get(
            Who::Anon(ip),
            &format!("/api/v1/auth/invites/{}", w.a.invite_token),
        )
        .await;
    r.assert_error(429, "rate_limited");
    // Another address is not slowed down, and the throttled one did not lock the account.
    w.login(w.a.owner.email(), PASSWORD, fresh_ip(), None)
        .await
        .assert_status(200);
    assert!(
        w.smtp.messages().is_empty(),
        "a throttled reset request sent mail"
    );
}

#[actix_web::test]
async fn totp_second_factor() {
    let w = World::new("totp").await;
    let owner = &w.a.owner;
    let email = owner.email();
    let ip = fresh_ip();

    w.post(
        owner.who(),
        "/api/v1/auth/totp/setup",
        json!({ "password": "not my password" }),
    )
    .await
    .assert_error(401, "invalid_credentials");
    w.post(
        owner.who(),
        "/api/v1/auth/totp/enable",
        json!({ "code": "123456" }),
    )
    .await
    .assert_error(409, "conflict");
    let r = w
        .post(
            owner.who(),
            "/api/v1/auth/totp/setup",
            json!({ "password": PASSWORD }),
        )
        .await;
    r.assert_status(200);
    let b32 = r.json()["secret"].as_str().unwrap().to_string();
    let url = r.json()["otpauth_url"].as_str().unwrap().to_string();
    assert!(
        url.starts_with("otpauth://totp/") && url.contains(&b32),
        "{url}"
    );
    let secret = totp_rs::Secret::try_from_base32(&b32)
        .unwrap()
        .as_bytes()
        .to_vec();

    // Not enforced before it is confirmed.
    w.login(email, PASSWORD, ip, None).await.assert_status(200);
    w.post(
        owner.who(),
        "/api/v1/auth/totp/enable",
        json!({ "code": "000000x" }),
    )
    .await
    .assert_error(401, "invalid_totp");
    let code = omnihub::auth::totp::current_code(&secret).unwrap();
    w.post(
        owner.who(),
        "/api/v1/auth/totp/enable",
        json!({ "code": code }),
    )
    .await
    .assert_status(204);
    w.post(
        owner.who(),
        "/api/v1/auth/totp/setup",
        json!({ "password": PASSWORD }),
    )
    .await
    .assert_error(409, "conflict");

    w.login(email, PASSWORD, ip, None)
        .await
        .assert_error(401, "totp_required");
    w.login(email, "wrong password!!", ip, Some(&code))
        .await
        .assert_error(401, "invalid_credentials");
    w.login(email, PASSWORD, ip, Some("12345x"))
        .await
        .assert_error(401, "invalid_totp");
    // The code used to enable is spent; the authenticator's next code (one step of skew) works.
    w.login(email, PASSWORD, ip, Some(&code))
        .await
        .assert_error(401, "invalid_totp");
    let next = totp_code(&secret, 30);
    let r = w.login(email, PASSWORD, ip, Some(&next)).await;
    r.assert_status(200);
    assert_eq!(r.json()["user"]["totp_enabled"], true);
    // Replaying an accepted code is refused.
    w.login(email, PASSWORD, fresh_ip(), Some(&next))
        .await
        .assert_error(401, "invalid_totp");

    // Disabling needs the password and a fresh code.
    w.post(
        owner.who(),
        "/api/v1/auth/totp/disable",
        json!({ "password": PASSWORD, "code": next }),
    )
    .await
    .assert_error(401, "invalid_totp");
    w.post(
        owner.who(),
        "/api/v1/auth/totp/disable",
        json!({ "password": "nope nope nope", "code": totp_code(&secret, 30) }),
    )
    .await
    .assert_error(401, "invalid_credentials");

    let actions = w.audit_actions(owner.who()).await;
    assert_audited(&actions, &["account.totp_enable", "auth.login"]);
    let login: Vec<_> = items(
        &w.get(owner.who(), "/api/v1/audit?action=auth.login&limit=200")
            .await,
    )
    .into_iter()
    .filter(|e| e["details"]["second_factor"] == true)
    .collect();
    assert_eq!(login.len(), 1, "one sign-in with the second factor");
}

#[actix_web::test]
async fn password_change_revokes_every_session() {
    let w = World::new("password-change").await;
    let me = &w.a.plain;
    let second = w.new_session(me).await;
    let new_password = "a brand new passphrase";

    w.post(
        me.who(),
        "/api/v1/auth/password",
        json!({ "current_password": "wrong password!!", "new_password": new_password }),
    )
    .await
    .assert_error(401, "invalid_credentials");
    w.get(Who::Cookie(&second, me.ip), "/api/v1/auth/me")
        .await
        .assert_status(200);

    let old = me.session();
    w.get(me.who(), "/api/v1/auth/me").await.assert_status(200);
    let r = w
        .post(
            me.who(),
            "/api/v1/auth/password",
            json!({ "current_password": PASSWORD, "new_password": new_password }),
        )
        .await;
    r.assert_status(204);
    assert!(
        r.cookie(w.cookie_name())
            .is_some_and(|c| c.value().is_empty()),
        "the cookie is cleared"
    );
    for s in [&old, &second] {
        w.get(Who::Cookie(s, me.ip), "/api/v1/auth/me")
            .await
            .assert_error(401, "unauthenticated");
    }
    w.login(me.email(), PASSWORD, me.ip, None)
        .await
        .assert_error(401, "invalid_credentials");
    w.login(me.email(), new_password, me.ip, None)
        .await
        .assert_status(200);
    assert_audited(
        &w.audit_actions(w.a.owner.who()).await,
        &["account.password_change"],
    );
}

#[actix_web::test]
async fn role_and_rights_changes_revoke_sessions_and_apply_at_once() {
    let w = World::new("role-change").await;
    let owner = w.a.owner.who();
    let emp = &w.a.plain;
    let uri = format!("/api/v1/employees/{}", emp.user.id);
    w.get(emp.who(), "/api/v1/audit")
        .await
        .assert_error(403, "forbidden");

    // A rename is not an access change: the session stays.
    w.patch(
        owner,
        &uri,
        json!({ "display_name": "Alpha Operator Renamed" }),
    )
    .await
    .assert_status(200);
    w.get(emp.who(), "/api/v1/auth/me").await.assert_status(200);

    let r = w
        .patch(owner, &uri, json!({ "global_rights": ["analytics"] }))
        .await;
    r.assert_status(200);
    assert_eq!(r.json()["global_rights"], json!(["analytics"]));
    w.get(emp.who(), "/api/v1/auth/me")
        .await
        .assert_error(401, "unauthenticated");
    w.sign_in(emp).await;
    w.get(emp.who(), "/api/v1/audit").await.assert_status(200);

    let r = w
        .patch(owner, &uri, json!({ "role": "client_owner" }))
        .await;
    r.assert_status(200);
    w.get(emp.who(), "/api/v1/auth/me")
        .await
        .assert_error(401, "unauthenticated");
    w.sign_in(emp).await;
    let me = w.get(emp.who(), "/api/v1/auth/me").await;
    assert_eq!(me.json()["role"], "client_owner");

    // Rights of an API token follow its holder at once: no manage-settings, no tokens.
    let integrator = format!("/api/v1/employees/{}", w.a.integrator.user.id);
    w.get(w.a.token_who(), "/api/v1/tokens")
        .await
        .assert_status(200);
    w.patch(
        owner,
        &integrator,
        json!({ "global_rights": ["analytics"] }),
    )
    .await
    .assert_status(200);
    w.get(w.a.token_who(), "/api/v1/tokens")
        .await
        .assert_error(403, "forbidden");
    w.get(w.a.token_who(), "/api/v1/audit")
        .await
        .assert_status(200);

    let actions = w.audit_actions(owner).await;
    assert_eq!(
        actions.iter().filter(|a| *a == "employee.update").count(),
        4,
        "{actions:?}"
    );
}

#[actix_web::test]
async fn disabling_or_removing_an_employee_stops_their_token_and_sessions_at_once() {
    let w = World::new("disable").await;
    let owner = w.a.owner.who();
    let integrator = &w.a.integrator;
    let uri = format!("/api/v1/employees/{}", integrator.user.id);
    // Warm the authentication cache so "at once" is tested against it.
    w.get(w.a.token_who(), "/api/v1/employees")
        .await
        .assert_status(200);
    w.get(integrator.who(), "/api/v1/employees")
        .await
        .assert_status(200);

    w.patch(owner, &uri, json!({ "disabled": true }))
        .await
        .assert_status(200);
    w.get(w.a.token_who(), "/api/v1/employees")
        .await
        .assert_error(401, "unauthenticated");
    w.get(integrator.who(), "/api/v1/employees")
        .await
        .assert_error(401, "unauthenticated");
    w.login(integrator.email(), PASSWORD, integrator.ip, None)
        .await
        .assert_error(401, "invalid_credentials");

    // Removal also revokes their tokens for good.
    w.patch(owner, &uri, json!({ "disabled": false }))
        .await
        .assert_status(200);
    w.delete(owner, &uri).await.assert_status(204);
    w.get(w.a.token_who(), "/api/v1/employees")
        .await
        .assert_error(401, "unauthenticated");
    let tokens = items(&w.get(owner, "/api/v1/tokens").await);
    let theirs: Vec<_> = tokens
        .iter()
        .filter(|t| t["user_id"] == json!(integrator.user.id))
        .collect();
    assert!(
        !theirs.is_empty() && theirs.iter().all(|t| !t["revoked_at"].is_null()),
        "{tokens:?}"
    );
    // History stays: the user is disabled, not gone.
    let r = w.get(owner, &uri).await;
    r.assert_status(200);
    assert_eq!(r.json()["disabled"], true);
    assert_audited(
        &w.audit_actions(owner).await,
        &["employee.update", "employee.remove", "token.create"],
    );
}

#[actix_web::test]
async fn password_reset_by_email() {
    let w = World::new("reset").await;
    let me = &w.a.plain;
    let second = w.new_session(me).await;
    let anon = Who::Anon(fresh_ip());
    // Both sessions are in the authentication cache, so "revoked" must reach it too.
    w.get(me.who(), "/api/v1/auth/me").await.assert_status(200);
    w.get(Who::Cookie(&second, me.ip), "/api/v1/auth/me")
        .await
        .assert_status(200);

    w.post(
        anon,
        "/api/v1/auth/password-reset",
        json!({ "email": "nobody@alpha.test" }),
    )
    .await
    .assert_status(202);
    w.post(
        anon,
        "/api/v1/auth/password-reset",
        json!({ "email": "  Operator@Alpha.TEST " }),
    )
    .await
    .assert_status(202);
    let mails = w.mails(1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mails_now = w.smtp.messages();
    assert_eq!(
        mails_now.len(),
        1,
        "exactly one mail, to the known address: {mails_now:?}"
    );
    assert_eq!(mails[0].to, vec![me.email().to_string()]);
    let text = mail_text(&mails[0]);
    assert!(
        text.contains("https://omnihub.test/reset-password#token="),
        "{text}"
    );
    let token = link_token(&text).expect("a token in the mail");

    let confirm = |password: &str| json!({ "token": token, "new_password": password });
    w.post(
        anon,
        "/api/v1/auth/password-reset/confirm",
        confirm("short"),
    )
    .await
    .assert_error(400, "validation_failed");
    let new_password = "reset to something new";
    w.post(
        anon,
        "/api/v1/auth/password-reset/confirm",
        confirm(new_password),
    )
    .await
    .assert_status(204);
    for s in [&me.session(), &second] {
        w.get(Who::Cookie(s, me.ip), "/api/v1/auth/me")
            .await
            .assert_error(401, "unauthenticated");
    }
    w.login(me.email(), PASSWORD, me.ip, None)
        .await
        .assert_error(401, "invalid_credentials");
    w.login(me.email(), new_password, me.ip, None)
        .await
        .assert_status(200);
    // The link works once.
    w.post(
        anon,
        "/api/v1/auth/password-reset/confirm",
        confirm("and yet another one"),
    )
    .await
    .assert_error(410, "invalid_token");
    w.login(me.email(), new_password, me.ip, None)
        .await
        .assert_status(200);
    assert_audited(
        &w.audit_actions(w.a.owner.who()).await,
        &["account.password_reset"],
    );
}

#[actix_web::test]
async fn invitation_with_partial_rights() {
    let w = World::new("invite").await;
    let owner = w.a.owner.who();
    let r = w
        .post(
            owner,
            "/api/v1/channels",
            json!({ "kind": "messaging", "provider": "telegram", "name": "Alpha Sales" }),
        )
        .await;
    r.assert_status(201);
    let sales = r.json()["id"].as_str().unwrap().to_string();
    let support = w.a.channel.id.to_string();

    let r = w
        .post(
            owner,
            "/api/v1/invites",
            json!({
                "email": "newbie@alpha.test",
                "group_ids": [w.a.group.id],
                "channel_grants": [{ "channel_id": support, "rights": ["read"] }],
            }),
        )
        .await;
    r.assert_status(201);
    let invite = r.json();
    assert_eq!(invite["email_sent"], true);
    let token = link_token(invite["url"].as_str().unwrap()).expect("token in the url");
    let mails = w.mails(1).await;
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].to, vec!["newbie@alpha.test".to_string()]);
    assert_eq!(
        link_token(&mail_text(&mails[0])).as_deref(),
        Some(token.as_str()),
        "the mail carries the same link"
    );

    let anon = Who::Anon(fresh_ip());
    let preview = w.get(anon, &format!("/api/v1/auth/invites/{token}")).await;
    preview.assert_status(200);
    assert_eq!(preview.json()["client_name"], "Alpha Trading");
    assert_eq!(preview.json()["email"], "newbie@alpha.test");

    let accept = json!({ "token": token, "display_name": "Alpha Newbie", "password": "newbie password 1", "locale": "en" });
    let r = w
        .post(anon, "/api/v1/auth/invites/accept", accept.clone())
        .await;
    r.assert_status(201);
    assert_eq!(r.json()["role"], "employee");
    assert_eq!(r.json()["client_id"], json!(w.a.client.id));
    assert_eq!(r.json()["global_rights"], json!([]));
    let newbie_id = r.json()["id"].as_str().unwrap().to_string();
    w.post(anon, "/api/v1/auth/invites/accept", accept)
        .await
        .assert_error(410, "invalid_token");
    w.get(anon, &format!("/api/v1/auth/invites/{token}"))
        .await
        .assert_error(410, "invalid_token");

    let ip = fresh_ip();
    let r = w
        .login("newbie@alpha.test", "newbie password 1", ip, None)
        .await;
    r.assert_status(200);
    let s = Sess::from_login(&r, w.cookie_name());
    let newbie = Who::Cookie(&s, ip);
    let list = w.get(newbie, "/api/v1/channels").await;
    list.assert_status(200);
    let channels = items(&list);
    assert_eq!(
        channels.len(),
        1,
        "only the delegated channel: {channels:?}"
    );
    assert_eq!(channels[0]["id"], json!(support));
    assert_eq!(channels[0]["my_rights"], json!(["read"]));
    assert!(!list.text().contains("Alpha Sales"));
    w.get(newbie, &format!("/api/v1/channels/{support}"))
        .await
        .assert_status(200);
    w.get(newbie, &format!("/api/v1/channels/{sales}"))
        .await
        .assert_error(404, "not_found");
    w.patch(
        newbie,
        &format!("/api/v1/channels/{support}"),
        json!({ "name": "Mine" }),
    )
    .await
    .assert_error(403, "forbidden");
    w.post(
        newbie,
        "/api/v1/invites",
        json!({ "email": "friend@alpha.test" }),
    )
    .await
    .assert_error(403, "forbidden");
    let me = w
        .get(newbie, &format!("/api/v1/employees/{newbie_id}"))
        .await;
    assert_eq!(me.json()["group_ids"], json!([w.a.group.id]));

    assert_audited(
        &w.audit_actions(owner).await,
        &[
            "channel.create",
            "invite.create",
            "employee.join",
            "auth.login",
        ],
    );
}

#[actix_web::test]
async fn nobody_grants_more_than_they_hold() {
    let w = World::new("escalation").await;
    let manager = w.a.manager.who();
    let before = w.snapshot().await;
    let plain = format!("/api/v1/employees/{}", w.a.plain.user.id);
    let me = format!("/api/v1/employees/{}", w.a.manager.user.id);
    let owner = format!("/api/v1/employees/{}", w.a.owner.user.id);
    let support = w.a.channel.id;
    w.patch(
        manager,
        &me,
        json!({ "global_rights": ["manage_employees", "billing"] }),
    )
    .await
    .assert_error(409, "conflict");
    w.patch(manager, &plain, json!({ "global_rights": ["billing"] }))
        .await
        .assert_error(403, "forbidden");
    w.patch(manager, &plain, json!({ "role": "client_owner" }))
        .await
        .assert_error(403, "forbidden");
    w.patch(manager, &owner, json!({ "disabled": true }))
        .await
        .assert_error(403, "forbidden");
    w.delete(manager, &owner)
        .await
        .assert_error(403, "forbidden");
    w.put(
        manager,
        &format!("{plain}/channels"),
        json!({ "grants": [{ "channel_id": support, "rights": ["read"] }] }),
    )
    .await
    .assert_error(403, "forbidden");
    w.post(
        manager,
        "/api/v1/invites",
        json!({ "email": "x1@alpha.test", "global_rights": ["billing"] }),
    )
    .await
    .assert_error(403, "forbidden");
    w.post(manager, "/api/v1/invites", json!({ "email": "x2@alpha.test", "channel_grants": [{ "channel_id": support, "rights": ["read"] }] }))
        .await
        .assert_error(403, "forbidden");
    // Another client's channel or group cannot be granted either.
    w.post(w.a.owner.who(), "/api/v1/invites", json!({ "email": "x3@alpha.test", "channel_grants": [{ "channel_id": w.b.channel.id, "rights": ["read"] }] }))
        .await
        .assert_error(404, "not_found");
    w.post(
        w.a.owner.who(),
        "/api/v1/invites",
        json!({ "email": "x4@alpha.test", "group_ids": [w.b.group.id] }),
    )
    .await
    .assert_error(404, "not_found");
    w.put(
        w.a.owner.who(),
        &format!("/api/v1/groups/{}/members", w.a.group.id),
        json!({ "member_ids": [w.b.plain.user.id] }),
    )
    .await
    .assert_error(404, "not_found");
    w.patch(w.a.owner.who(), &owner, json!({ "disabled": true }))
        .await
        .assert_error(409, "conflict");
    assert_eq!(
        w.snapshot().await,
        before,
        "a refused change changed the store"
    );

    // The owner may delegate; it applies to the employee at once.
    w.get(w.a.plain.who(), &format!("/api/v1/channels/{support}"))
        .await
        .assert_error(404, "not_found");
    w.put(
        w.a.owner.who(),
        &format!("{plain}/channels"),
        json!({ "grants": [{ "channel_id": support, "rights": ["read", "reply"] }] }),
    )
    .await
    .assert_status(200);
    let r = w
        .get(w.a.plain.who(), &format!("/api/v1/channels/{support}"))
        .await;
    r.assert_status(200);
    assert_eq!(r.json()["my_rights"], json!(["read", "reply"]));
    assert_audited(
        &w.audit_actions(w.a.owner.who()).await,
        &["employee.channels_set"],
    );
}

#[actix_web::test]
async fn a_blocked_client_keeps_only_its_own_accounts() {
    let w = World::new("blocked").await;
    let a = &w.a;
    for who in [a.owner.who(), a.plain.who(), a.manager.who(), a.token_who()] {
        w.get(who, "/api/v1/employees").await.assert_status(200);
    }
    let block = format!("/api/v1/platform/clients/{}/block", a.client.id);
    let r = w
        .post(
            w.moderator.who(),
            &block,
            json!({ "reason": "spam campaign" }),
        )
        .await;
    r.assert_status(200);
    assert_eq!(r.json()["status"], "blocked");

    for who in [a.owner.who(), a.plain.who(), a.manager.who(), a.token_who()] {
        w.get(who, "/api/v1/employees")
            .await
            .assert_error(403, "client_blocked");
        w.get(who, "/api/v1/channels")
            .await
            .assert_error(403, "client_blocked");
    }
    let before = w.snapshot().await;
    w.post(
        a.owner.who(),
        "/api/v1/groups",
        json!({ "name": "Alpha While Blocked" }),
    )
    .await
    .assert_error(403, "client_blocked");
    w.delete(a.owner.who(), &format!("/api/v1/channels/{}", a.channel.id))
        .await
        .assert_error(403, "client_blocked");
    w.post(
        a.token_who(),
        "/api/v1/tokens",
        json!({ "name": "while blocked" }),
    )
    .await
    .assert_error(403, "client_blocked");
    assert_eq!(w.snapshot().await, before);
    // Their own account still answers, and says why.
    let me = w.get(a.owner.who(), "/api/v1/auth/me").await;
    me.assert_status(200);
    assert_eq!(me.json()["client_active"], false);
    let profile = w.get(a.owner.who(), "/api/v1/auth/profile").await;
    assert_eq!(profile.json()["client"]["blocked_reason"], "spam campaign");
    // The other client is untouched.
    w.get(w.b.owner.who(), "/api/v1/employees")
        .await
        .assert_status(200);

    let unblock = format!("/api/v1/platform/clients/{}/unblock", a.client.id);
    w.post(w.platform_owner.who(), &unblock, json!({}))
        .await
        .assert_status(200);
    for who in [a.owner.who(), a.plain.who(), a.token_who()] {
        w.get(who, "/api/v1/employees").await.assert_status(200);
    }
    let actions = w.audit_actions(a.owner.who()).await;
    assert_audited(&actions, &["client.block", "client.unblock"]);
    assert!(
        !w.audit_actions(w.b.owner.who())
            .await
            .iter()
            .any(|x| x.starts_with("client.")),
        "B's log shows A's block"
    );
}

#[actix_web::test]
async fn platform_creates_a_client_whose_owner_sets_a_password() {
    let w = World::new("onboarding").await;
    let r = w
        .post(
            w.platform_owner.who(),
            "/api/v1/platform/clients",
            json!({ "name": "Charlie Foods", "plan": "start", "owner_email": "Boss@Charlie.test", "owner_name": "Charlie Boss", "locale": "en" }),
        )
        .await;
    r.assert_status(201);
    let created = r.json();
    assert_eq!(created["email_sent"], true);
    assert_eq!(created["owner"]["email"], "boss@charlie.test");
    assert_eq!(created["owner"]["role"], "client_owner");
    let client_id = created["client"]["id"].as_str().unwrap().to_string();
    let token = link_token(created["owner_setup_url"].as_str().unwrap()).unwrap();
    let mails = w.mails(1).await;
    assert_eq!(mails[0].to, vec!["boss@charlie.test".to_string()]);
    assert_eq!(
        link_token(&mail_text(&mails[0])).as_deref(),
        Some(token.as_str())
    );
    // Taken addresses are refused whatever their case, and nothing half-made is left.
    let (_, before) = w
        .store
        .list_clients(&omnihub_store::ClientFilter {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    let dup =
        json!({ "name": "Charlie Again", "owner_email": "BOSS@charlie.TEST", "owner_name": "X" });
    w.post(w.platform_owner.who(), "/api/v1/platform/clients", dup)
        .await
        .assert_error(409, "conflict");
    let (_, after) = w
        .store
        .list_clients(&omnihub_store::ClientFilter {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(before, after);

    // Nobody can sign in before the password is set; the link sets it once.
    let ip = fresh_ip();
    w.login("boss@charlie.test", "charlie boss password", ip, None)
        .await
        .assert_error(401, "invalid_credentials");
    let confirm = json!({ "token": token, "new_password": "charlie boss password" });
    w.post(
        Who::Anon(ip),
        "/api/v1/auth/password-reset/confirm",
        confirm.clone(),
    )
    .await
    .assert_status(204);
    w.post(
        Who::Anon(ip),
        "/api/v1/auth/password-reset/confirm",
        confirm,
    )
    .await
    .assert_error(410, "invalid_token");
    let r = w
        .login("boss@charlie.test", "charlie boss password", ip, None)
        .await;
    r.assert_status(200);
    let s = Sess::from_login(&r, w.cookie_name());
    let boss = Who::Cookie(&s, ip);
    let staff = w.get(boss, "/api/v1/employees").await;
    assert_eq!(items(&staff).len(), 1);
    assert!(!staff.text().contains("alpha") && !staff.text().contains("bravo"));
    w.get(boss, &format!("/api/v1/platform/clients/{client_id}"))
        .await
        .assert_error(403, "forbidden");
    assert_audited(
        &w.audit_actions(boss).await,
        &["client.create", "account.password_reset", "auth.login"],
    );

    // Platform staff see it; a moderator removed by the platform owner is signed out at once.
    let r = w
        .get(w.moderator.who(), "/api/v1/platform/clients?q=charlie")
        .await;
    assert_eq!(r.json()["total"], 1, "{}", r.text());
    w.delete(
        w.platform_owner.who(),
        &format!("/api/v1/platform/moderators/{}", w.moderator.user.id),
    )
    .await
    .assert_status(204);
    w.get(w.moderator.who(), "/api/v1/platform/clients")
        .await
        .assert_error(401, "unauthenticated");
    w.login(w.moderator.email(), PASSWORD, fresh_ip(), None)
        .await
        .assert_error(401, "invalid_credentials");
    let mods = w
        .get(w.platform_owner.who(), "/api/v1/platform/moderators")
        .await;
    assert_eq!(items(&mods)[0]["disabled"], true, "{}", mods.text());
    // Only moderators are removed through this route.
    let r = w
        .delete(
            w.platform_owner.who(),
            &format!("/api/v1/platform/moderators/{}", w.a.owner.user.id),
        )
        .await;
    r.assert_error(404, "not_found");
    w.get(w.a.owner.who(), "/api/v1/auth/me")
        .await
        .assert_status(200);
}

#[actix_web::test]
async fn expired_used_or_withdrawn_links_are_410() {
    let w = World::new("links").await;
    let anon = Who::Anon(fresh_ip());
    let past = chrono::Utc::now() - chrono::Duration::minutes(1);

    // An expired invitation.
    let secret = omnihub::auth::tokens::random_secret();
    w.store
        .create_invite(&omnihub_store::NewInvite {
            client_id: w.a.client.id,
            email: "late@alpha.test".into(),
            token_hash: omnihub::auth::tokens::hash(&secret),
            global_rights: omnihub_core::GlobalRights::empty(),
            group_ids: Vec::new(),
            channel_grants: Vec::new(),
            created_by: w.a.owner.user.id,
            expires_at: past,
        })
        .await
        .unwrap();
    w.get(anon, &format!("/api/v1/auth/invites/{secret}"))
        .await
        .assert_error(410, "invalid_token");
    let accept = |token: &str| json!({ "token": token, "display_name": "Late", "password": "late but long enough" });
    w.post(anon, "/api/v1/auth/invites/accept", accept(&secret))
        .await
        .assert_error(410, "invalid_token");

    // A withdrawn one.
    let r = w
        .post(
            w.a.owner.who(),
            "/api/v1/invites",
            json!({ "email": "maybe@alpha.test" }),
        )
        .await;
    r.assert_status(201);
    let token = link_token(r.json()["url"].as_str().unwrap()).unwrap();
    w.get(anon, &format!("/api/v1/auth/invites/{token}"))
        .await
        .assert_status(200);
    w.delete(
        w.a.owner.who(),
        &format!("/api/v1/invites/{}", r.json()["id"].as_str().unwrap()),
    )
    .await
    .assert_status(204);
    w.post(anon, "/api/v1/auth/invites/accept", accept(&token))
        .await
        .assert_error(410, "invalid_token");
    assert!(
        w.store
            .credentials_by_email("maybe@alpha.test")
            .await
            .is_err(),
        "no account was made"
    );
    // An address that already has an account cannot be invited, whatever its case.
    w.post(
        w.a.owner.who(),
        "/api/v1/invites",
        json!({ "email": "Operator@ALPHA.test" }),
    )
    .await
    .assert_error(409, "conflict");
    w.post(
        w.a.owner.who(),
        "/api/v1/invites",
        json!({ "email": "owner@bravo.test" }),
    )
    .await
    .assert_error(409, "conflict");

    // An expired reset link.
    let reset = omnihub::auth::tokens::random_secret();
    w.store
        .create_password_reset(
            w.a.plain.user.id,
            &omnihub::auth::tokens::hash(&reset),
            past,
        )
        .await
        .unwrap();
    w.post(
        anon,
        "/api/v1/auth/password-reset/confirm",
        json!({ "token": reset, "new_password": "expired link password" }),
    )
    .await
    .assert_error(410, "invalid_token");
    w.login(w.a.plain.email(), PASSWORD, w.a.plain.ip, None)
        .await
        .assert_status(200);

    // A disabled account gets no reset mail (the answer is the same 202).
    let plain = format!("/api/v1/employees/{}", w.a.plain.user.id);
    w.patch(w.a.owner.who(), &plain, json!({ "disabled": true }))
        .await
        .assert_status(200);
    let before = w.smtp.messages().len();
    w.post(
        anon,
        "/api/v1/auth/password-reset",
        json!({ "email": w.a.plain.email() }),
    )
    .await
    .assert_status(202);
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Mail is sent in the background, so an earlier invitation may land late: look only at
    // mail to the disabled address.
    let to_disabled = w.a.plain.email().to_string();
    let sent: Vec<_> = w
        .smtp
        .messages()
        .into_iter()
        .skip(before)
        .filter(|m| m.to.contains(&to_disabled))
        .collect();
    assert!(sent.is_empty(), "mail to a disabled account: {sent:?}");
}

#[actix_web::test]
async fn audit_log_pages_newest_first() {
    let w = World::new("audit-pages").await;
    let owner = w.a.owner.who();
    for i in 0..5 {
        w.post(
            w.a.manager.who(),
            "/api/v1/groups",
            json!({ "name": format!("Alpha Page {i}") }),
        )
        .await
        .assert_status(201);
    }
    let mut seen = Vec::new();
    let mut uri = "/api/v1/audit?action=group.create&limit=2".to_string();
    loop {
        let r = w.get(owner, &uri).await;
        r.assert_status(200);
        let page = items(&r);
        assert!(page.len() <= 2);
        seen.extend(page);
        match r.json()["next_before"].as_str() {
            Some(cursor) => {
                uri = format!("/api/v1/audit?action=group.create&limit=2&before={cursor}")
            }
            None => break,
        }
    }
    let names: Vec<&str> = seen
        .iter()
        .map(|e| e["details"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "Alpha Page 4",
            "Alpha Page 3",
            "Alpha Page 2",
            "Alpha Page 1",
            "Alpha Page 0"
        ]
    );
    for e in &seen {
        assert_eq!(e["actor_id"], json!(w.a.manager.user.id));
        assert_eq!(e["client_id"], json!(w.a.client.id));
        assert_eq!(e["ip"], json!(w.a.manager.ip.to_string()));
    }
    // Filtered by actor: the manager's own sign-in and groups, nobody else's entries.
    let r = w
        .get(
            owner,
            &format!("/api/v1/audit?actor_id={}", w.a.manager.user.id),
        )
        .await;
    assert!(
        items(&r)
            .iter()
            .all(|e| e["actor_id"] == json!(w.a.manager.user.id))
    );
    assert_eq!(items(&r).len(), 6, "{}", r.text());
    // Another client's actor shows nothing here.
    let r = w
        .get(
            owner,
            &format!("/api/v1/audit?actor_id={}", w.b.owner.user.id),
        )
        .await;
    assert!(items(&r).is_empty(), "{}", r.text());
}

#[actix_web::test]
async fn an_invitation_outlives_its_deleted_group_and_channel() {
    let w = World::new("invite-dangling").await;
    let owner = w.a.owner.who();
    let group = w.victim_group(&w.a).await;
    let channel = w.victim_channel(&w.a).await;
    let r = w
        .post(
            owner,
            "/api/v1/invites",
            json!({
                "email": "dangling@alpha.test",
                "group_ids": [group.id, w.a.group.id],
                "channel_grants": [
                    { "channel_id": channel.id, "rights": ["read"] },
                    { "channel_id": w.a.channel.id, "rights": ["read", "reply"] },
                ],
            }),
        )
        .await;
    r.assert_status(201);
    let token = link_token(r.json()["url"].as_str().unwrap()).unwrap();
    w.delete(owner, &format!("/api/v1/groups/{}", group.id))
        .await
        .assert_status(204);
    w.delete(owner, &format!("/api/v1/channels/{}", channel.id))
        .await
        .assert_status(204);

    let accept = json!({ "token": token, "display_name": "Alpha Dangling", "password": "dangling password" });
    let r = w
        .post(Who::Anon(fresh_ip()), "/api/v1/auth/invites/accept", accept)
        .await;
    r.assert_status(201);
    let id = r.json()["id"].as_str().unwrap().to_string();
    let e = w.get(owner, &format!("/api/v1/employees/{id}")).await;
    assert_eq!(e.json()["group_ids"], json!([w.a.group.id]), "{}", e.text());
    assert_eq!(
        e.json()["channel_grants"],
        json!([{ "channel_id": w.a.channel.id, "rights": ["read", "reply"] }])
    );
}

#[actix_web::test]
async fn secrets_are_write_only_and_not_stored_in_clear() {
    let w = World::new("secrets").await;
    let owner = w.a.owner.who();
    let first = "sk-live-first-secret-0123456789";
    let second = "sk-live-second-secret-9876543210";
    let r = w
        .post(owner, "/api/v1/channels", json!({ "kind": "messaging", "provider": "telegram", "name": "Alpha Bot", "credentials": { "bot_token": first } }))
        .await;
    r.assert_status(201);
    assert_eq!(r.json()["has_credentials"], true);
    let id = r.json()["id"].as_str().unwrap().to_string();
    let r2 = w
        .patch(
            owner,
            &format!("/api/v1/channels/{id}"),
            json!({ "credentials": { "bot_token": second } }),
        )
        .await;
    r2.assert_status(200);
    let r3 = w.get(owner, &format!("/api/v1/channels/{id}")).await;
    let r4 = w.get(owner, "/api/v1/channels").await;
    let r5 = w
        .get(
            w.platform_owner.who(),
            &format!("/api/v1/platform/clients/{}", w.a.client.id),
        )
        .await;
    let r6 = w.get(owner, "/api/v1/audit").await;
    for r in [&r, &r2, &r3, &r4, &r5, &r6] {
        assert!(
            !r.text().contains(first) && !r.text().contains(second),
            "a credential came back: {}",
            r.text()
        );
    }
    let channel_id = id.parse().unwrap();
    let stored = w
        .store
        .channel_credentials(w.a.client.id, channel_id)
        .await
        .unwrap();
    assert_eq!(
        stored,
        Some(json!({ "bot_token": second })),
        "the connector still gets them"
    );

    // Second-factor secrets, session cookies and API tokens are not in the database file either.
    let setup = w
        .post(
            owner,
            "/api/v1/auth/totp/setup",
            json!({ "password": PASSWORD }),
        )
        .await;
    let totp = totp_rs::Secret::try_from_base32(setup.json()["secret"].as_str().unwrap())
        .unwrap()
        .as_bytes()
        .to_vec();
    let db = w
        .config
        .store_url()
        .trim_start_matches("sqlite://")
        .to_string();
    let mut bytes = Vec::new();
    for file in [db.clone(), format!("{db}-wal")] {
        bytes.extend(std::fs::read(&file).unwrap_or_default());
    }
    assert!(!bytes.is_empty());
    let contains = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
    assert!(
        contains(b"Alpha Bot"),
        "the scan does not see the data at all"
    );
    for (what, needle) in [
        ("channel credential", first.as_bytes()),
        ("channel credential", second.as_bytes()),
        (
            "seeded channel credential",
            credential_secret("alpha").as_bytes(),
        ),
        ("TOTP secret", &totp[..]),
        ("session cookie", w.a.owner.session().cookie.as_bytes()),
        ("API token", w.a.token.as_bytes()),
        ("password", PASSWORD.as_bytes()),
    ] {
        assert!(!contains(needle), "the {what} is stored in clear");
    }
}

#[actix_web::test]
async fn platform_client_search_and_filters() {
    let w = World::new("client-search").await;
    let staff = w.moderator.who();
    let total = |r: &Resp| r.json()["total"].as_u64().unwrap();
    let r = w.get(staff, "/api/v1/platform/clients").await;
    assert_eq!(total(&r), 2);
    let r = w.get(staff, "/api/v1/platform/clients?q=BRAVO").await;
    assert_eq!(total(&r), 1);
    assert_eq!(items(&r)[0]["id"], json!(w.b.client.id));
    let r = w.get(staff, "/api/v1/platform/clients?q=owner@alpha").await;
    assert_eq!(
        items(&r).len(),
        1,
        "search by the owner's e-mail: {}",
        r.text()
    );
    assert_eq!(items(&r)[0]["id"], json!(w.a.client.id));
    w.post(
        staff,
        &format!("/api/v1/platform/clients/{}/block", w.b.client.id),
        json!({ "reason": "fraud" }),
    )
    .await
    .assert_status(200);
    let r = w
        .get(staff, "/api/v1/platform/clients?status=blocked")
        .await;
    assert_eq!(total(&r), 1);
    assert_eq!(items(&r)[0]["blocked_reason"], "fraud");
    let r = w
        .get(staff, "/api/v1/platform/clients?limit=1&offset=1")
        .await;
    assert_eq!((items(&r).len(), total(&r)), (1, 2));
    for bad in ["limit=abc", "status=deleted", "offset=-1", "page=2"] {
        w.get(staff, &format!("/api/v1/platform/clients?{bad}"))
            .await
            .assert_error(400, "invalid_parameter");
    }
    let r = w
        .get(w.a.owner.who(), "/api/v1/platform/clients?q=bravo")
        .await;
    r.assert_error(403, "forbidden");
}
