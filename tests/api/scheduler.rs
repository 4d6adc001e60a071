//! The scheduler's REST API through the whole application: a client's tasks listed for a
//! calendar, cancelled, rescheduled and retried, with the provider's reason visible; the rules
//! of triggered tasks; an employee's notifications. Another client's ids are 404.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use omnihub_core::triggers::{ItemKind, SocialItem};
use omnihub_store::{FinishedTask, NewTask, TaskOutcome};
use serde_json::json;

use crate::support::*;

async fn task(w: &World, t: &Tenant, key: &str, due_at: DateTime<Utc>) -> String {
    w.store
        .schedule_task(&NewTask {
            client_id: Some(t.client.id),
            kind: "social.publish".into(),
            payload: json!({ "key": key }),
            due_at,
            idempotency_key: format!("{}-{key}", t.tag),
        })
        .await
        .unwrap()
        .id
        .to_string()
}

/// Claims and fails for good, with the provider's words, the one task due at `at`.
async fn fail(w: &World, at: DateTime<Utc>, reason: &str) {
    let claimed = w
        .store
        .claim_due_tasks("api-test", at, at + chrono::Duration::seconds(60), 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    let finished = FinishedTask {
        id: claimed[0].id,
        outcome: TaskOutcome::Failed {
            error: reason.into(),
            retry_at: None,
        },
        next_due: None,
    };
    w.store
        .finish_tasks(&[finished], "api-test", at)
        .await
        .unwrap();
}

#[actix_web::test]
async fn tasks_are_listed_for_a_calendar_and_controlled() {
    let w = World::new("scheduler-tasks").await;
    let owner = w.a.owner.who();
    let base = Utc::now() + chrono::Duration::days(10);
    let day = |n: i64| base + chrono::Duration::days(n);
    let monday = task(&w, &w.a, "monday", day(0)).await;
    let tuesday = task(&w, &w.a, "tuesday", day(1)).await;
    let _friday = task(&w, &w.a, "friday", day(4)).await;
    let bravo = task(&w, &w.b, "theirs", day(0)).await;
    // Long ago, failed with the provider's reason.
    let past = DateTime::from_timestamp(1_000, 0).unwrap();
    let failed = task(&w, &w.a, "failed", past).await;
    fail(&w, past, "VK error 214: access to adding post denied").await;

    let week = format!(
        "/api/v1/tasks?from={}&to={}",
        urlencode(&day(0).to_rfc3339()),
        urlencode(&day(3).to_rfc3339())
    );
    let r = w.get(owner, &week).await;
    r.assert_status(200);
    let ids: Vec<String> = r.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, [monday.clone(), tuesday.clone()], "{}", r.text());

    let r = w.get(owner, "/api/v1/tasks?status=failed").await;
    r.assert_status(200);
    let items = r.json()["items"].clone();
    assert_eq!(items.as_array().unwrap().len(), 1, "{items}");
    assert_eq!(items[0]["id"], failed);
    assert_eq!(
        items[0]["last_error"],
        "VK error 214: access to adding post denied"
    );
    assert_eq!(items[0]["attempts"], 1);

    w.get(owner, "/api/v1/tasks?status=lost")
        .await
        .assert_error(400, "invalid_parameter");
    let backwards = format!(
        "/api/v1/tasks?from={}&to={}",
        urlencode(&day(3).to_rfc3339()),
        urlencode(&day(0).to_rfc3339())
    );
    w.get(owner, &backwards)
        .await
        .assert_error(400, "invalid_parameter");

    // Another client's task does not exist here.
    for path in [
        format!("/api/v1/tasks/{bravo}"),
        format!("/api/v1/tasks/{bravo}/cancel"),
        format!("/api/v1/tasks/{bravo}/retry"),
    ] {
        let r = if path.ends_with(&bravo) {
            w.get(owner, &path).await
        } else {
            w.post(owner, &path, json!({})).await
        };
        r.assert_error(404, "not_found");
    }
    w.post(
        owner,
        &format!("/api/v1/tasks/{bravo}/reschedule"),
        json!({ "due_at": day(2).to_rfc3339() }),
    )
    .await
    .assert_error(404, "not_found");

    // Drag Monday's task to Thursday, then cancel it; twice is a conflict.
    let r = w
        .post(
            owner,
            &format!("/api/v1/tasks/{monday}/reschedule"),
            json!({ "due_at": day(3).to_rfc3339() }),
        )
        .await;
    r.assert_status(200);
    assert_eq!(
        r.json()["due_at"]
            .as_str()
            .unwrap()
            .parse::<DateTime<Utc>>()
            .unwrap(),
        DateTime::from_timestamp_millis(day(3).timestamp_millis()).unwrap()
    );
    w.post(
        owner,
        &format!("/api/v1/tasks/{monday}/reschedule"),
        json!({ "due_at": "next thursday" }),
    )
    .await
    .assert_error(400, "invalid_json");
    let r = w
        .post(owner, &format!("/api/v1/tasks/{monday}/cancel"), json!({}))
        .await;
    r.assert_status(200);
    assert_eq!(r.json()["status"], "cancelled");
    let again = w
        .post(owner, &format!("/api/v1/tasks/{monday}/cancel"), json!({}))
        .await;
    again.assert_error(409, "conflict");
    assert!(again.text().contains("cancelled"), "{}", again.text());

    // Retry: only what failed (or was skipped); it is pending again with fresh attempts.
    w.post(owner, &format!("/api/v1/tasks/{tuesday}/retry"), json!({}))
        .await
        .assert_error(409, "conflict");
    let r = w
        .post(owner, &format!("/api/v1/tasks/{failed}/retry"), json!({}))
        .await;
    r.assert_status(200);
    assert_eq!(
        (r.json()["status"].clone(), r.json()["attempts"].clone()),
        (json!("pending"), json!(0))
    );

    let actions = w.audit_actions(owner).await;
    for action in ["task.reschedule", "task.cancel", "task.retry"] {
        assert!(
            actions.iter().any(|a| a == action),
            "{action} in {actions:?}"
        );
    }
}

fn urlencode(s: &str) -> String {
    s.replace('+', "%2B").replace(':', "%3A")
}

#[actix_web::test]
async fn trigger_rules_are_checked_kept_per_client_and_notify_the_employee() {
    let w = World::new("scheduler-triggers").await;
    let owner = w.a.owner.who();
    let bad = [
        json!({ "name": "x", "condition": { "kind": "hashtag", "hashtag": "#two words" }, "action": { "kind": "like" } }),
        json!({ "name": "x", "condition": { "kind": "author", "author_id": " " }, "action": { "kind": "like" } }),
        json!({ "name": "x", "condition": { "kind": "author", "author_id": "1" }, "action": { "kind": "reply", "template": "Hi {{contact.name}}" } }),
        json!({ "name": "x", "condition": { "kind": "author", "author_id": "1" }, "action": { "kind": "notify", "user_id": w.b.plain.user.id } }),
        json!({ "name": "", "condition": { "kind": "author", "author_id": "1" }, "action": { "kind": "like" } }),
    ];
    for body in bad {
        let r = w.post(owner, "/api/v1/triggers", body.clone()).await;
        r.assert_error(400, "validation_failed");
        assert!(!r.json()["message"].as_str().unwrap().is_empty(), "{body}");
    }
    w.post(
        owner,
        "/api/v1/triggers",
        json!({ "name": "x", "condition": { "kind": "mood" }, "action": { "kind": "like" } }),
    )
    .await
    .assert_error(400, "invalid_json");

    let r = w
        .post(
            owner,
            "/api/v1/triggers",
            json!({
                "name": "Скидки",
                "condition": { "kind": "hashtag", "hashtag": "#СКИДКА" },
                "action": { "kind": "notify", "user_id": w.a.plain.user.id },
            }),
        )
        .await;
    r.assert_status(201);
    let rule = r.json();
    assert_eq!(rule["condition"]["hashtag"], "#скидка", "stored normalised");
    assert_eq!(rule["enabled"], true);
    let id = rule["id"].as_str().unwrap().to_string();
    w.get(w.b.owner.who(), &format!("/api/v1/triggers/{id}"))
        .await
        .assert_error(404, "not_found");
    w.delete(w.b.owner.who(), &format!("/api/v1/triggers/{id}"))
        .await
        .assert_error(404, "not_found");
    let listed = w.get(owner, "/api/v1/triggers").await;
    assert_eq!(listed.json()["items"].as_array().unwrap().len(), 1);

    // A comment with the hashtag arrives (twice): the employee is notified once.
    let item = SocialItem {
        client_id: w.a.client.id,
        profile_id: uuid::Uuid::now_v7(),
        network: "vk".into(),
        kind: ItemKind::Comment,
        remote_id: "555".into(),
        parent_remote_id: Some("554".into()),
        author_id: "42".into(),
        author_name: "Ирина".into(),
        text: "А #скидка на доставку есть?".into(),
        created_at: Utc::now(),
    };
    let hub = w.state.hub.clone();
    assert_eq!(hub.social_item_arrived(&item).await.unwrap().len(), 1);
    let deadline = Instant::now() + Duration::from_secs(30);
    let notes = loop {
        let r = w.get(w.a.plain.who(), "/api/v1/notifications").await;
        r.assert_status(200);
        let items = r.json()["items"].clone();
        if !items.as_array().unwrap().is_empty() {
            break items;
        }
        assert!(Instant::now() < deadline, "no notification");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(hub.social_item_arrived(&item).await.unwrap().len(), 1);
    assert_eq!(notes[0]["payload"]["item"]["author_name"], "Ирина");
    let mine = w.get(owner, "/api/v1/notifications").await;
    assert!(
        mine.json()["items"].as_array().unwrap().is_empty(),
        "the owner was not named"
    );

    // Switched off, the rule fires no more; deleted, it is gone.
    let r = w
        .put(
            owner,
            &format!("/api/v1/triggers/{id}"),
            json!({
                "name": "Скидки",
                "condition": { "kind": "hashtag", "hashtag": "скидка" },
                "action": { "kind": "like" },
                "enabled": false,
            }),
        )
        .await;
    r.assert_status(200);
    let mut other = item.clone();
    other.remote_id = "556".into();
    assert!(hub.social_item_arrived(&other).await.unwrap().is_empty());
    w.delete(owner, &format!("/api/v1/triggers/{id}"))
        .await
        .assert_status(204);
    w.get(owner, &format!("/api/v1/triggers/{id}"))
        .await
        .assert_error(404, "not_found");
    let r = w.get(w.a.plain.who(), "/api/v1/notifications").await;
    assert_eq!(r.json()["items"].as_array().unwrap().len(), 1, "still one");
    let actions = w.audit_actions(owner).await;
    for action in ["trigger.create", "trigger.update", "trigger.delete"] {
        assert!(
            actions.iter().any(|a| a == action),
            "{action} in {actions:?}"
        );
    }
}
