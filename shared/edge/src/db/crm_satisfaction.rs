//! `crm_satisfaction`: the satisfaction (CSAT) results a CRM reported for our conversations, the
//! latest per connector and conversation, for the analytics.

use crate::db::Db;
use crate::db::Param;
use crate::db::{number, optional_text, text};
use domain::error::ApiError;
use domain::ids::{ConnectorId, ConversationId};
use domain::tenant::Tenant;
use serde::Deserialize;

pub struct Rating<'a> {
    pub score: Option<f64>,
    pub level: Option<&'a str>,
    pub comment: Option<&'a str>,
}

/// Keeps the conversation's latest rating from this connector.
pub async fn record(
    db: &Db,
    tenant: &Tenant,
    connector: &ConnectorId,
    conversation: &ConversationId,
    rating: &Rating<'_>,
    now_us: i64,
) -> Result<(), ApiError> {
    db.scoped(tenant, "INSERT INTO crm_satisfaction (connector_id, business_id, conversation_id, score, level, comment, updated_us) \
         VALUES (?2, ?1, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (connector_id, conversation_id) DO UPDATE SET \
         score = excluded.score, level = excluded.level, comment = excluded.comment, updated_us = excluded.updated_us",
    )
    .bind(&[
        text(connector.as_str()),
        text(conversation.as_str()),
        rating.score.map_or(Param::Null, Param::Number),
        optional_text(rating.level),
        optional_text(rating.comment),
        number(now_us),
    ])?
    .run()
    .await?;
    Ok(())
}

/// The average score and the count of rated conversations updated in [from_us, to_us).
#[derive(Debug, Default, Deserialize)]
pub struct Average {
    pub average: Option<f64>,
    pub count: i64,
}

pub async fn average(db: &Db, tenant: &Tenant, from_us: i64, to_us: i64) -> Result<Average, ApiError> {
    let row = db
        .scoped(
            tenant,
            "SELECT avg(score) AS average, count(score) AS count FROM crm_satisfaction \
             WHERE business_id = ?1 AND updated_us >= ?2 AND updated_us < ?3",
        )
        .bind(&[number(from_us), number(to_us)])?
        .first::<Average>(None)
        .await?;
    Ok(row.unwrap_or_default())
}

/// The statement that deletes every connector's satisfaction ratings of the conversations
/// `conversations` selects (an erasure's: a rating's comment is the customer's words).
pub fn erase_of_conversations(
    db: &Db,
    tenant: &Tenant,
    conversations: crate::db::Sql,
) -> Result<crate::db::Statement, ApiError> {
    conversations
        .within("DELETE FROM crm_satisfaction WHERE business_id = :business AND conversation_id IN ({sql})")
        .scoped(db, tenant)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Fixture, Must, random};
    use serde_json::json;
    use std::time::Duration;

    fn rating(score: Option<f64>, level: &str) -> Rating<'_> {
        Rating {
            score,
            level: Some(level),
            comment: None,
        }
    }

    #[test]
    fn the_latest_rating_of_a_conversation_from_a_connector_is_kept() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let connector = fixture.connector(&acme).await;
            let conversation = ConversationId::generate(random());
            let first = fixture.now().micros();
            record(
                &fixture.db,
                &acme,
                &connector,
                &conversation,
                &rating(Some(2.0), "poor"),
                first,
            )
            .await
            .must();
            fixture.stack.advance(Duration::from_secs(5));
            let later = fixture.now().micros();
            let changed = Rating {
                comment: Some("sorted"),
                ..rating(Some(4.5), "good")
            };
            record(&fixture.db, &acme, &connector, &conversation, &changed, later)
                .await
                .must();
            let rows = fixture.rows("crm_satisfaction", "conversation_id");
            assert_eq!(rows.len(), 1, "{rows:?}");
            assert_eq!(rows[0]["score"], json!(4.5));
            assert_eq!(rows[0]["level"], json!("good"));
            assert_eq!(rows[0]["comment"], json!("sorted"));
            assert_eq!(rows[0]["updated_us"], json!(later));
            assert_eq!(rows[0]["business_id"], json!(acme.business_id.as_str()));
        });
    }

    #[test]
    fn the_average_is_of_the_business_rated_conversations_in_the_window() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let globex = fixture.business_on("Globex", 0).await;
            let (first, second) = (fixture.connector(&acme).await, fixture.connector(&acme).await);
            let theirs = fixture.connector(&globex).await;
            let conversation = || ConversationId::generate(random());
            let before = fixture.now().micros();
            record(
                &fixture.db,
                &acme,
                &first,
                &conversation(),
                &rating(Some(1.0), "bad"),
                before,
            )
            .await
            .must();
            fixture.stack.advance(Duration::from_secs(60));
            let from = fixture.now().micros();
            let shared = conversation();
            record(
                &fixture.db,
                &acme,
                &first,
                &shared,
                &rating(Some(4.0), "good"),
                from,
            )
            .await
            .must();
            record(
                &fixture.db,
                &acme,
                &second,
                &shared,
                &rating(Some(5.0), "great"),
                from,
            )
            .await
            .must();
            record(
                &fixture.db,
                &acme,
                &first,
                &conversation(),
                &rating(None, "unrated"),
                from,
            )
            .await
            .must();
            record(
                &fixture.db,
                &globex,
                &theirs,
                &conversation(),
                &rating(Some(1.0), "bad"),
                from,
            )
            .await
            .must();
            let answer = average(&fixture.db, &acme, from, from + 1).await.must();
            assert_eq!((answer.average, answer.count), (Some(4.5), 2));
            let empty = average(&fixture.db, &acme, from + 1, from + 2).await.must();
            assert_eq!((empty.average, empty.count), (None, 0));
        });
    }
}
