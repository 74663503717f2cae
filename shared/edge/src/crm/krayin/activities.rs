//! The activities on a contact's lead: made once for each of our records or Chatwoot's (linked,
//! so work done again finds it), brought up to date, marked done when they record something
//! finished; and the lead's moves through its pipeline's stages, once per trigger and only
//! forwards.

use super::Krayin;
use super::contact::ContactState;
use crate::crm::client::Refusal;
use crate::crm::unreadable;
use domain::crm::krayin::ActivityId;
use domain::crm::krayin::activity::{self, PlannedActivity, StageTrigger};
use domain::crm::krayin::answer;
use domain::crm::krayin::api;
use domain::crm::work::{ContactKey, LinkKind};

impl Krayin<'_> {
    /// Creates the activity (and marks it done when it records something finished that Krayin
    /// creates not done); returns its id.
    pub(super) async fn create_activity(&self, planned: &PlannedActivity) -> Result<ActivityId, Refusal> {
        let id = ActivityId(self.created_id(&api::create_activity(&planned.fields)).await?);
        if planned.needs_marking_done() {
            self.data(&api::mark_activity_done(id)).await?;
        }
        Ok(id)
    }

    /// Moves the contact's lead to the stage configured for `trigger`: once per trigger, and only
    /// forwards along the lead's pipeline (a salesperson's own move further is never undone).
    pub(super) async fn progress(
        &self,
        key: &ContactKey,
        state: &mut ContactState,
        trigger: StageTrigger,
    ) -> Result<(), Refusal> {
        let (Some(target), Some(lead)) = (activity::stage_for(&self.settings, trigger), state.refs.lead)
        else {
            return Ok(());
        };
        if state.stages_done.contains(&trigger) {
            return Ok(());
        }
        let pipelines = self.pipelines().await?;
        let current = answer::Lead::from_data(&self.data(&api::get_lead(lead)).await?)
            .map_err(|reason| unreadable("Krayin", reason))?;
        let pipeline = pipelines
            .iter()
            .find(|pipeline| Some(pipeline.id) == current.pipeline_id)
            .or_else(|| self.settings.lead_pipeline(&pipelines));
        if let Some(pipeline) = pipeline
            && let Some(stage) = pipeline.stage(target)
        {
            let at = current
                .stage_id
                .and_then(|id| pipeline.stage(id))
                .map(|stage| stage.sort_order);
            if let Some(next) = activity::next_stage(at, stage) {
                self.data(&api::move_lead(lead, next)).await?;
            }
        }
        // A stage that is not in the lead's pipeline (a salesperson moved the lead to another)
        // is not a move Krayin can make: the trigger is spent either way.
        state.stages_done.push(trigger);
        self.keep(key, state).await
    }

    /// The activity linked to our record or Chatwoot's (`local_id`), if there is one.
    async fn linked_activity(&self, kind: LinkKind, local_id: &str) -> Result<Option<ActivityId>, Refusal> {
        Ok(self
            .linked(kind, local_id)
            .await?
            .and_then(|id| id.parse().ok())
            .map(ActivityId))
    }

    /// The activity of our record or Chatwoot's (`kind`, `local_id`), made from `planned` when
    /// it has none (`planned` is None when the contact has no Person or Lead); true when made now.
    async fn activity_of(
        &self,
        kind: LinkKind,
        local_id: &str,
        planned: Option<PlannedActivity>,
    ) -> Result<Option<(ActivityId, bool)>, Refusal> {
        if let Some(activity) = self.linked_activity(kind, local_id).await? {
            return Ok(Some((activity, false)));
        }
        let Some(planned) = planned else {
            return Ok(None);
        };
        let activity = self.create_activity(&planned).await?;
        self.link(kind, local_id, &activity.to_string()).await?;
        Ok(Some((activity, true)))
    }

    /// A conversation's activity, made when it has none and kept as the contact's current one.
    pub(super) async fn conversation_activity(
        &self,
        key: &ContactKey,
        state: &mut ContactState,
        local_id: &str,
        planned: Option<PlannedActivity>,
    ) -> Result<Option<ActivityId>, Refusal> {
        let found = self
            .activity_of(LinkKind::Conversation, local_id, planned)
            .await?;
        if let Some((activity, true)) = found {
            state.refs.activity = Some(activity);
            self.keep(key, state).await?;
        }
        Ok(found.map(|(activity, _)| activity))
    }

    pub(super) async fn message_activity(
        &self,
        local_id: &str,
        planned: Option<PlannedActivity>,
    ) -> Result<Option<ActivityId>, Refusal> {
        let found = self.activity_of(LinkKind::Message, local_id, planned).await?;
        Ok(found.map(|(activity, _)| activity))
    }

    /// A conversation changed without ending: its activity brought up to date (made when it has
    /// none yet).
    pub(super) async fn update_conversation_activity(
        &self,
        key: &ContactKey,
        state: &mut ContactState,
        local_id: &str,
        planned: Option<PlannedActivity>,
    ) -> Result<Option<ActivityId>, Refusal> {
        match (
            self.linked_activity(LinkKind::Conversation, local_id).await?,
            &planned,
        ) {
            (Some(activity), Some(planned)) => {
                self.data(&api::update_activity(activity, &planned.fields, planned.done))
                    .await?;
                Ok(Some(activity))
            }
            (Some(activity), None) => Ok(Some(activity)),
            (None, _) => self.conversation_activity(key, state, local_id, planned).await,
        }
    }

    /// A conversation ended: its activity marked done (made done when it has none yet), and the
    /// lead moved to the resolved stage.
    pub(super) async fn resolve(
        &self,
        key: &ContactKey,
        state: &mut ContactState,
        local_id: &str,
        planned: Option<PlannedActivity>,
    ) -> Result<Option<ActivityId>, Refusal> {
        let activity = match self.linked_activity(LinkKind::Conversation, local_id).await? {
            Some(activity) => {
                self.data(&api::mark_activity_done(activity)).await?;
                Some(activity)
            }
            None if self.settings.sync_conversations => {
                self.conversation_activity(key, state, local_id, planned).await?
            }
            None => None,
        };
        self.progress(key, state, StageTrigger::Resolved).await?;
        Ok(activity)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{
        HOST, body_of, calls, connector, conversation, created, fail, follow, holding, kept, message,
        pipelines, synced_to,
    };
    use crate::crm::Outcome;
    use crate::runtime::native::{Outbound, Reply};
    use crate::testing::Fixture;
    use serde_json::{Value, json};

    #[test]
    fn a_lead_moves_forward_along_its_own_pipeline_once_per_trigger_and_never_back() {
        let cases = [
            (
                1,
                1,
                Some(2),
                "from the first stage it moves on to the configured one",
            ),
            (1, 4, None, "a salesperson's move past it is never undone"),
            (
                2,
                7,
                None,
                "a lead a salesperson put in another pipeline stays there",
            ),
        ];
        for (pipeline, stage, moved_to, description) in cases {
            let fixture = Fixture::new();
            fixture.run(async {
                let connector = connector(
                    &fixture,
                    json!({ "pipeline_id": 1, "stage_progression": true, "stage_on_conversation_created": 2,
                            "sync_conversations": false }),
                )
                .await;
                holding(&fixture, &connector, 42, Some("krayin:person:7|krayin:lead:11")).await;
                let lead = json!({ "data": { "id": 11, "lead_pipeline_id": pipeline, "lead_pipeline_stage_id": stage } });
                fixture.stack.partner(HOST, move |call| match (call.method.as_str(), call.path()) {
                    ("GET", "/api/v1/settings/pipelines") => pipelines(),
                    ("GET", "/api/v1/leads/11") => Reply::json(200, &lead),
                    ("PUT", "/api/v1/leads/stage/edit/11") => created(11),
                    _ => Reply::status(500),
                });
                let first = follow(&fixture, &connector, conversation("conversation_created", 5, 42, "Channel::Api")).await;
                assert!(
                    matches!(first, Ok(Outcome::Skipped(_))),
                    "{description}: conversations are not synced: {first:?}"
                );
                let moves: Vec<Value> = fixture
                    .stack
                    .calls_to(HOST)
                    .iter()
                    .filter(|call| call.path() == "/api/v1/leads/stage/edit/11")
                    .map(Outbound::json)
                    .collect();
                let expected: Vec<Value> = moved_to
                    .map(|stage| json!({ "lead_pipeline_stage_id": stage }))
                    .into_iter()
                    .collect();
                assert_eq!(moves, expected, "{description}");
                let spent = kept(&fixture, &connector, 42).await.and_then(|kept| kept.stages_done);
                assert_eq!(spent.as_deref(), Some("conversation_created"), "{description}");

                let before = calls(&fixture).len();
                follow(&fixture, &connector, conversation("conversation_created", 6, 42, "Channel::Api"))
                    .await
                    .unwrap_or_else(|e| fail(e));
                assert_eq!(
                    calls(&fixture).len(),
                    before,
                    "{description}: a second conversation asks Krayin nothing"
                );
            });
        }
    }

    #[test]
    fn a_finished_exchange_of_a_type_krayin_makes_not_done_is_marked_done_and_a_note_is_not() {
        for (channel, kind, marked) in [
            ("Channel::Whatsapp", "call", true),
            ("Channel::Email", "email", true),
            ("Channel::WebWidget", "note", false),
        ] {
            let fixture = Fixture::new();
            fixture.run(async {
                let connector = connector(&fixture, json!({ "sync_messages": true })).await;
                holding(&fixture, &connector, 42, Some("krayin:person:7|krayin:lead:11")).await;
                fixture
                    .stack
                    .partner(HOST, |call| match (call.method.as_str(), call.path()) {
                        ("POST", "/api/v1/activities") => created(31),
                        ("PUT", "/api/v1/activities/31") => created(31),
                        _ => Reply::status(500),
                    });
                let outcome = follow(&fixture, &connector, message(900, 42, channel)).await;
                assert_eq!(synced_to(&outcome), "krayin:activity:31", "{channel}");
                let activity = body_of(&fixture, "POST", "/api/v1/activities");
                assert_eq!(activity["type"], kind, "{channel}");
                assert_eq!(activity["lead_id"], 11, "{channel}: on the lead");
                assert_eq!(
                    activity["participants"],
                    json!({ "persons": [7] }),
                    "{channel}: with the person"
                );
                assert_eq!(
                    activity.get("schedule_from").is_some(),
                    kind != "note",
                    "{channel}: Krayin wants a schedule of every type but a note"
                );
                let marks: Vec<Value> = fixture
                    .stack
                    .calls_to(HOST)
                    .iter()
                    .filter(|call| call.method == "PUT")
                    .map(Outbound::json)
                    .collect();
                let expected = if marked {
                    vec![json!({ "is_done": 1 })]
                } else {
                    Vec::new()
                };
                assert_eq!(marks, expected, "{channel}");

                let again = follow(&fixture, &connector, message(900, 42, channel)).await;
                assert_eq!(synced_to(&again), "krayin:activity:31", "{channel}: linked once");
                assert_eq!(
                    calls(&fixture)
                        .iter()
                        .filter(|call| *call == "POST /api/v1/activities")
                        .count(),
                    1,
                    "{channel}: the same message makes no second activity"
                );
            });
        }
    }
}
