//! The contact card over REST: its history across channels (only the conversations the caller
//! may see), its custom fields (validated, audited by name), and the routing settings the
//! workspace edits (operators' capacity and members' competency).

use omnihub_core::model::{ChannelGrant, ChannelKind, Conversation, Provider};
use omnihub_core::{ChannelId, ChannelRights};
use omnihub_store::{InboundEvent, Ingest, NewChannel};
use serde_json::{Value, json};

use crate::support::*;

/// A customer message on `channel` from `user` in `chat`, committed through the hub.
async fn inbound(
    w: &World,
    t: &Tenant,
    channel: ChannelId,
    chat: &str,
    user: &str,
) -> Conversation {
    let event = InboundEvent {
        attachments: Vec::new(),
        client_id: t.client.id,
        channel_id: channel,
        external_conversation_id: chat.to_string(),
        external_user_id: user.to_string(),
        contact_name: "Anna Petrova".into(),
        provider_event_id: format!("card-event-{}", seq()),
        text: format!("hello from {chat}"),
    };
    match w.state.hub.ingest(event).await.unwrap() {
        Ingest::New { conversation, .. } => conversation,
        Ingest::Duplicate(_) => panic!("fresh event ids are never duplicates"),
    }
}

fn ids(r: &Resp) -> Vec<String> {
    r.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["conversation"]["id"].as_str().unwrap().to_string())
        .collect()
}

/// One customer who wrote on two channels (two cards merged into one), and a second channel.
struct Card {
    contact: String,
    first: Conversation,
    second: Conversation,
    other_channel: ChannelId,
}

async fn card(w: &World) -> Card {
    let a = &w.a;
    let other_channel = w
        .store
        .create_channel(&NewChannel {
            client_id: a.client.id,
            kind: ChannelKind::Messaging,
            provider: Provider::Api,
            name: "Second line".into(),
            settings: json!({}),
            credentials: None,
        })
        .await
        .unwrap()
        .id;
    let first = inbound(w, a, a.channel.id, "card-chat-1", "anna-1").await;
    let second = inbound(w, a, other_channel, "card-chat-2", "anna-2").await;
    assert_ne!(first.contact_id, second.contact_id);
    w.post(
        a.owner.who(),
        &format!("/api/v1/contacts/{}/merge", first.contact_id),
        json!({ "other_id": second.contact_id }),
    )
    .await
    .assert_status(200);
    Card {
        contact: first.contact_id.to_string(),
        first,
        second,
        other_channel,
    }
}

async fn grant(w: &World, who: &Actor, grants: &[(ChannelId, ChannelRights)]) {
    let grants: Vec<ChannelGrant> = grants
        .iter()
        .map(|(channel_id, rights)| ChannelGrant {
            channel_id: *channel_id,
            rights: *rights,
        })
        .collect();
    w.store
        .set_channel_grants(w.a.client.id, who.user.id, &grants)
        .await
        .unwrap();
    w.state.auth_cache.invalidate_user(who.user.id);
}

#[actix_web::test]
async fn the_history_shows_every_channel_but_only_what_the_caller_may_see() {
    let w = World::new("card_history").await;
    let a = &w.a;
    let c = card(&w).await;
    let history = format!("/api/v1/contacts/{}/conversations", c.contact);

    // The owner sees both conversations, one per channel, newest first.
    let r = w.get(a.owner.who(), &history).await;
    r.assert_status(200);
    assert_eq!(
        ids(&r),
        vec![c.second.id.to_string(), c.first.id.to_string()]
    );
    let channels: Vec<Value> = r.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["conversation"]["channel_id"].clone())
        .collect();
    assert_eq!(
        channels,
        vec![json!(c.other_channel), json!(a.channel.id)],
        "{}",
        r.text()
    );
    assert_eq!(
        r.json()["items"][0]["last_message_text"],
        "hello from card-chat-2"
    );

    // An operator reading both channels, without the right to see every conversation: the
    // second conversation, assigned to the owner, is not theirs to see, nor to learn of.
    let plain = &a.plain;
    w.get(plain.who(), &history)
        .await
        .assert_error(404, "not_found");
    let rw = ChannelRights::READ | ChannelRights::REPLY;
    grant(&w, plain, &[(a.channel.id, rw), (c.other_channel, rw)]).await;
    assert_eq!(ids(&w.get(plain.who(), &history).await).len(), 2);
    w.patch(
        a.owner.who(),
        &format!("/api/v1/conversations/{}", c.second.id),
        json!({ "assignee_id": a.owner.user.id }),
    )
    .await
    .assert_status(200);
    let r = w.get(plain.who(), &history).await;
    r.assert_status(200);
    assert_eq!(ids(&r), vec![c.first.id.to_string()], "{}", r.text());
    w.get(
        plain.who(),
        &format!("/api/v1/conversations/{}", c.second.id),
    )
    .await
    .assert_error(404, "not_found");
    // With only one channel delegated, the other channel's conversation is gone too.
    grant(&w, plain, &[(a.channel.id, ChannelRights::READ)]).await;
    w.patch(
        a.owner.who(),
        &format!("/api/v1/conversations/{}", c.second.id),
        json!({ "assignee_id": null }),
    )
    .await
    .assert_status(200);
    assert_eq!(
        ids(&w.get(plain.who(), &history).await),
        vec![c.first.id.to_string()]
    );

    // Another client's owner, a bad cursor, and paging.
    w.get(w.b.owner.who(), &history)
        .await
        .assert_error(404, "not_found");
    w.get(a.owner.who(), &format!("{history}?before=nonsense"))
        .await
        .assert_error(400, "invalid_parameter");
    let page = w.get(a.owner.who(), &format!("{history}?limit=1")).await;
    assert_eq!(ids(&page), vec![c.second.id.to_string()]);
    let next = page.json()["next_before"].as_str().unwrap().to_string();
    let rest = w
        .get(a.owner.who(), &format!("{history}?limit=1&before={next}"))
        .await;
    assert_eq!(ids(&rest), vec![c.first.id.to_string()]);
}

#[actix_web::test]
async fn custom_fields_are_flat_validated_and_audited_by_name() {
    let w = World::new("card_fields").await;
    let a = &w.a;
    let c = card(&w).await;
    let url = format!("/api/v1/contacts/{}", c.contact);
    let owner = a.owner.who();

    let r = w
        .patch(
            owner,
            &url,
            json!({ "fields": { "phone": "+79991234567", "vip": true, "orders": 3, "note": "line one\nline two" } }),
        )
        .await;
    r.assert_status(200);
    assert_eq!(r.json()["fields"]["phone"], "+79991234567");
    assert_eq!(r.json()["fields"]["orders"], 3);

    for bad in [
        json!({ "address": { "city": "Moscow" } }),
        json!({ "tags": ["a"] }),
        json!({ "empty": null }),
        json!({ " phone": "1" }),
        json!({ "": "1" }),
        json!({ ("x".repeat(65)): "1" }),
        json!({ "long": "y".repeat(2_001) }),
        json!({ "bell": "ring\u{7}" }),
        json!("not an object"),
    ] {
        let r = w.patch(owner, &url, json!({ "fields": bad })).await;
        r.assert_error(400, "validation_failed");
    }
    let many: serde_json::Map<String, Value> =
        (0..101).map(|i| (format!("f{i}"), json!("v"))).collect();
    w.patch(owner, &url, json!({ "fields": many }))
        .await
        .assert_error(400, "validation_failed");
    // Nothing of the refused edits was kept.
    let r = w.get(owner, &url).await;
    assert_eq!(r.json()["fields"]["vip"], true);
    assert!(r.json()["fields"].get("address").is_none());

    // A reader who may not reply does not edit; another client's owner does not find it.
    grant(&w, &a.plain, &[(a.channel.id, ChannelRights::READ)]).await;
    w.patch(a.plain.who(), &url, json!({ "fields": {} }))
        .await
        .assert_error(403, "forbidden");
    w.patch(w.b.owner.who(), &url, json!({ "fields": {} }))
        .await
        .assert_error(404, "not_found");

    // The audit names the fields that changed, never their values.
    w.patch(
        owner,
        &url,
        json!({ "fields": { "phone": "+79990000000", "vip": true, "city": "Tver" } }),
    )
    .await
    .assert_status(200);
    let log = w.get(owner, "/api/v1/audit?limit=200").await;
    let entry = log.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "contact.update")
        .cloned()
        .unwrap();
    assert_eq!(
        entry["details"]["fields_changed"],
        json!(["city", "note", "orders", "phone"]),
        "{entry}"
    );
    assert!(!entry.to_string().contains("+7999"), "{entry}");
}

#[actix_web::test]
async fn operators_capacity_and_competency_are_read_and_edited_by_managers() {
    let w = World::new("card_routing").await;
    let a = &w.a;

    // Every member reads the operators' state; nobody configured yet has the defaults.
    let r = w.get(a.plain.who(), "/api/v1/operators").await;
    r.assert_status(200);
    let plain_row = |r: &Resp| {
        r.json()["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["user_id"] == json!(a.plain.user.id))
            .cloned()
            .unwrap()
    };
    assert_eq!(plain_row(&r)["capacity"], 5);
    assert!(
        !r.text().contains(&w.b.owner.user.id.to_string()),
        "another client's operators"
    );

    let op = format!("/api/v1/operators/{}", a.plain.user.id);
    w.patch(a.manager.who(), &op, json!({ "capacity": 12 }))
        .await
        .assert_status(200);
    assert_eq!(
        plain_row(&w.get(a.owner.who(), "/api/v1/operators").await)["capacity"],
        12
    );
    w.patch(a.manager.who(), &op, json!({ "capacity": 1_001 }))
        .await
        .assert_error(400, "validation_failed");
    w.patch(a.plain.who(), &op, json!({ "capacity": 50 }))
        .await
        .assert_error(403, "forbidden");

    let level = format!(
        "/api/v1/groups/{}/members/{}/competency",
        a.group.id, a.plain.user.id
    );
    for bad in [0, 101] {
        w.put(a.manager.who(), &level, json!({ "level": bad }))
            .await
            .assert_error(400, "validation_failed");
    }
    w.put(a.manager.who(), &level, json!({ "level": 80 }))
        .await
        .assert_status(200);
    let r = w
        .get(
            a.plain.who(),
            &format!("/api/v1/groups/{}/routing", a.group.id),
        )
        .await;
    assert_eq!(
        r.json()["members"],
        json!([{ "user_id": a.plain.user.id, "competency": 80 }])
    );
    let actions = w.audit_actions(a.owner.who()).await;
    assert!(actions.contains(&"group.competency_set".to_string()));
    assert!(actions.contains(&"operator.update".to_string()));
}
