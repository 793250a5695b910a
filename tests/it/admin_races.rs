//! Issue #17 section 1 on the file store: concurrent PUTs and DELETEs through the management
//! API. With the same `If-Match`, exactly one wins and every loser gets 412 (never 409);
//! without `If-Match` each is a replace-all and all succeed, the last writer's set standing.
//! [`race`] is shared with the replica tests, which run the same races across processes.

use http::Method;
use serde_json::{Value, json};

use crate::common::client::Reply;
use crate::common::*;

pub const PATH: &str = "/api/v2/keys/custom-signing";

/// A PUT of `body` to the admin listener at `admin_url`, with `If-Match` when given.
pub async fn put(admin_url: &str, body: &Value, if_match: Option<&str>) -> Reply {
    let auth = format!("Bearer {ADMIN_TOKEN}");
    let mut headers = vec![
        ("authorization", auth.as_str()),
        ("content-type", "application/json"),
    ];
    headers.extend(if_match.map(|tag| ("if-match", tag)));
    send(
        Method::PUT,
        &format!("{admin_url}{PATH}"),
        &headers,
        body.to_string().as_bytes(),
    )
    .await
}

/// One PUT per body at once, the i-th through `admins[i % admins.len()]`; the replies in
/// body order.
pub async fn race(admins: &[String], bodies: &[Value], if_match: Option<&str>) -> Vec<Reply> {
    let puts = bodies.iter().enumerate().map(|(i, body)| {
        let admin = admins[i % admins.len()].clone();
        let body = body.clone();
        let if_match = if_match.map(str::to_string);
        tokio::spawn(async move { put(&admin, &body, if_match.as_deref()).await })
    });
    let mut replies = Vec::new();
    for put in puts.collect::<Vec<_>>() {
        replies.push(put.await.expect("the PUT task"));
    }
    replies
}

/// `n` bodies, each the signing key plus a key of its own (so the winner can be told).
pub fn bodies(signing: &Value, n: usize) -> Vec<Value> {
    (0..n)
        .map(|_| json!({"keys": [signing, public_jwk(resigner::jose::alg::Alg::ES256)]}))
        .collect()
}

/// The kids the admin API at `admin_url` lists.
pub async fn listed_kids(admin_url: &str) -> Vec<Value> {
    let auth = format!("Bearer {ADMIN_TOKEN}");
    let reply = get(&format!("{admin_url}{PATH}"), &[("authorization", &auth)]).await;
    reply.json()["keys"]
        .as_array()
        .map(|keys| keys.iter().map(|k| k["kid"].clone()).collect())
        .unwrap_or_default()
}

pub fn kids_of(body: &Value) -> Vec<Value> {
    body["keys"]
        .as_array()
        .map(|keys| keys.iter().map(|k| k["kid"].clone()).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn same_if_match_one_wins_and_the_rest_get_412() {
    let fixture = Fixture::start().await;
    let admin = fixture.admin_url("");
    let signing = Value::Object(fixture.proxy.active_jwk());
    let first = put(&admin, &json!({"keys": [signing]}), None).await;
    assert_eq!(first.status, 200);
    let etag = first.headers["etag"].to_str().unwrap().to_string();

    let bodies = bodies(&signing, 10);
    let replies = race(std::slice::from_ref(&admin), &bodies, Some(&etag)).await;

    let statuses: Vec<u16> = replies.iter().map(|r| r.status.as_u16()).collect();
    let winners: Vec<usize> = (0..10).filter(|&i| statuses[i] == 200).collect();
    assert_eq!(winners.len(), 1, "{statuses:?}");
    assert_eq!(
        statuses.iter().filter(|&&s| s == 412).count(),
        9,
        "{statuses:?}"
    );
    assert_eq!(listed_kids(&admin).await, kids_of(&bodies[winners[0]]));
}

#[tokio::test]
async fn without_if_match_every_put_and_delete_applies_and_the_last_stands() {
    let fixture = Fixture::start().await;
    let admin = fixture.admin_url("");
    let signing = Value::Object(fixture.proxy.active_jwk());

    let bodies = bodies(&signing, 10);
    let replies = race(std::slice::from_ref(&admin), &bodies, None).await;

    let statuses: Vec<u16> = replies.iter().map(|r| r.status.as_u16()).collect();
    assert!(statuses.iter().all(|&s| s == 200), "{statuses:?}");
    let versions: Vec<String> = replies
        .iter()
        .map(|r| r.headers["etag"].to_str().unwrap().to_string())
        .collect();
    let final_kids = listed_kids(&admin).await;
    assert!(
        bodies.iter().any(|b| kids_of(b) == final_kids),
        "the final set is one writer's whole set: {final_kids:?}"
    );
    let mut distinct = versions.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(
        distinct.len(),
        10,
        "each PUT made its own version: {versions:?}"
    );

    let auth = format!("Bearer {ADMIN_TOKEN}");
    let deletes = (0..5).map(|_| {
        let url = format!("{admin}{PATH}");
        let auth = auth.clone();
        tokio::spawn(
            async move { send(Method::DELETE, &url, &[("authorization", &auth)], b"").await },
        )
    });
    for delete in deletes.collect::<Vec<_>>() {
        assert_eq!(delete.await.unwrap().status, 204);
    }
    assert_eq!(listed_kids(&admin).await, Vec::<Value>::new());
}
