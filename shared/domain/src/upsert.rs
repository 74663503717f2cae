//! Deciding, for a batch of customers, which to create and which stored customer each updates.
//!
//! The decision is pure: it sees the batch and the stored customers that share any of its keys,
//! and it treats customers created earlier in the same batch as stored, so a batch that names
//! one person twice updates the first instead of creating two.

use crate::customer::CustomerDraft;
use crate::email::Email;
use crate::error::{ErrorBody, ErrorCode};
use crate::ids::CustomerId;
use crate::phone::Phone;
use serde::Serialize;
use std::collections::{HashMap, HashSet};

/// The most customers one request may carry.
pub const MAX_BATCH: usize = 1000;

/// What happened to one item of a batch, at its position in the request.
#[derive(Debug)]
pub struct ItemOutcome {
    pub index: usize,
    pub external_id: Option<String>,
    pub result: Result<Decision, ErrorBody>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum MatchedBy {
    ExternalId,
    Email,
    Phone,
}

/// The identifying keys of a stored customer, and its WhatsApp number: no key, but indexed like
/// them, so a write that changes none of the four leaves every index as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownCustomer {
    pub id: CustomerId,
    pub external_id: Option<String>,
    pub email: Option<Email>,
    pub phone: Option<Phone>,
    pub whatsapp_number: Option<Phone>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Create(CustomerId),
    Update { id: CustomerId, matched_by: MatchedBy },
}

/// What the API reports for one item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Created,
    Updated,
    Failed,
}

impl Decision {
    pub fn customer_id(&self) -> &CustomerId {
        match self {
            Self::Create(id) | Self::Update { id, .. } => id,
        }
    }

    pub fn action(&self) -> Action {
        match self {
            Self::Create(_) => Action::Created,
            Self::Update { .. } => Action::Updated,
        }
    }

    pub fn matched_by(&self) -> Option<MatchedBy> {
        match self {
            Self::Create(_) => None,
            Self::Update { matched_by, .. } => Some(*matched_by),
        }
    }
}

#[derive(Default)]
struct KeyIndex {
    owners: Vec<KnownCustomer>,
    by_external_id: HashMap<String, usize>,
    by_email: HashMap<Email, usize>,
    by_phone: HashMap<Phone, usize>,
}

impl KeyIndex {
    fn insert_keys(&mut self, at: usize) {
        let owner = &self.owners[at];
        if let Some(key) = &owner.external_id {
            self.by_external_id.insert(key.clone(), at);
        }
        if let Some(key) = &owner.email {
            self.by_email.insert(key.clone(), at);
        }
        if let Some(key) = &owner.phone {
            self.by_phone.insert(key.clone(), at);
        }
    }

    fn remove_keys(&mut self, at: usize) {
        let owner = &self.owners[at];
        if let Some(key) = &owner.external_id {
            self.by_external_id.remove(key);
        }
        if let Some(key) = &owner.email {
            self.by_email.remove(key);
        }
        if let Some(key) = &owner.phone {
            self.by_phone.remove(key);
        }
    }

    fn add(&mut self, customer: KnownCustomer) -> usize {
        self.owners.push(customer);
        let at = self.owners.len() - 1;
        self.insert_keys(at);
        at
    }

    /// The stored customer an item is: by external_id, then email, then phone. Both the sync and
    /// the bulk import match so (the guide's duplicate detection); a match by email or phone to a
    /// customer linked to another external_id is refused by [`update`], so two CRM records are
    /// never merged.
    fn find(&self, draft: &CustomerDraft) -> Option<(usize, MatchedBy)> {
        draft
            .external_id
            .as_ref()
            .and_then(|key| self.by_external_id.get(key))
            .map(|&at| (at, MatchedBy::ExternalId))
            .or_else(|| {
                let at = self.by_email.get(draft.email.as_ref()?)?;
                Some((*at, MatchedBy::Email))
            })
            .or_else(|| {
                let at = self.by_phone.get(draft.phone.as_ref()?)?;
                Some((*at, MatchedBy::Phone))
            })
    }

    /// The customer other than `except` that already holds one of `keys`, as an item error.
    fn clash(&self, keys: &KnownCustomer, except: Option<usize>) -> Option<ErrorBody> {
        let other = |found: Option<&usize>| found.copied().filter(|&at| Some(at) != except);
        let clash = |field: &str, at: usize| ErrorBody {
            code: ErrorCode::Conflict,
            message: format!(
                "{field} already belongs to customer {}; use /api-customers-sync to match customers by {field}",
                self.owners[at].id
            ),
            field: Some(field.to_owned()),
        };
        let external = keys
            .external_id
            .as_ref()
            .and_then(|k| other(self.by_external_id.get(k)));
        let email = keys.email.as_ref().and_then(|k| other(self.by_email.get(k)));
        let phone = keys.phone.as_ref().and_then(|k| other(self.by_phone.get(k)));
        external
            .map(|at| clash("external_id", at))
            .or_else(|| email.map(|at| clash("email", at)))
            .or_else(|| phone.map(|at| clash("phone", at)))
    }
}

/// Every item's fate in request order, and the write step of each.
///
/// Items of one step neither touch the same customer nor take a key that another item of the
/// step gives up, so a step can be written as one statement per kind in any row order. Steps are
/// written in order: a customer named twice, or an email moved from one customer to another
/// within the batch, ends up as the request says.
#[derive(Debug)]
pub struct Plan {
    pub decisions: Vec<Result<Decision, ErrorBody>>,
    pub steps: Vec<usize>,
    /// Whether each item gives its customer a key or WhatsApp number it did not have (true for a
    /// new one): an update that gives none need not rewrite the columns, nor their indexes.
    pub rekeys: Vec<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    ExternalId(String),
    Email(Email),
    Phone(Phone),
}

fn keys_of(customer: &KnownCustomer) -> Vec<Key> {
    let mut keys = Vec::with_capacity(3);
    keys.extend(customer.external_id.clone().map(Key::ExternalId));
    keys.extend(customer.email.clone().map(Key::Email));
    keys.extend(customer.phone.clone().map(Key::Phone));
    keys
}

#[derive(Default)]
struct Steps {
    current: usize,
    /// The step that last touched each customer, by its place in the index: the current step's
    /// customers are those it names (a list, not a set: a thousand items hashed twice each).
    touched_in: Vec<Option<usize>>,
    released: HashSet<Key>,
    steps: Vec<usize>,
}

impl Steps {
    /// Places an item that turned customer `before` (None: a new one) into `after`, the
    /// customer at `at` in the index.
    fn place(&mut self, before: Option<&KnownCustomer>, at: usize, after: &KnownCustomer) {
        // Most items of a batch release no key and take none released: their keys are not
        // even listed.
        let takes_released = !self.released.is_empty() && {
            let old_keys = before.map(keys_of).unwrap_or_default();
            keys_of(after)
                .iter()
                .any(|key| !old_keys.contains(key) && self.released.contains(key))
        };
        if self.touched_in.get(at).copied().flatten() == Some(self.current) || takes_released {
            self.current += 1;
            self.released.clear();
        }
        if self.touched_in.len() <= at {
            self.touched_in.resize(at + 1, None);
        }
        self.touched_in[at] = Some(self.current);
        if let Some(before) = before {
            let new_keys = keys_of(after);
            self.released
                .extend(keys_of(before).into_iter().filter(|key| !new_keys.contains(key)));
        }
        self.steps.push(self.current);
    }

    fn skip(&mut self) {
        self.steps.push(self.current);
    }
}

/// Decides each item's fate, in order. Items that already failed validation stay failed.
/// An item that creates a customer gets the id at its own position in `fresh_ids`.
pub fn plan(
    known: Vec<KnownCustomer>,
    items: &[Result<CustomerDraft, ErrorBody>],
    fresh_ids: &[CustomerId],
) -> Plan {
    let mut index = KeyIndex::default();
    for customer in known {
        index.add(customer);
    }
    let mut steps = Steps::default();
    let mut rekeys = Vec::with_capacity(items.len());
    let decisions = items
        .iter()
        .enumerate()
        .map(|(position, item)| {
            let decided = decide(&mut index, item, fresh_ids.get(position));
            match &decided {
                Ok((matched, at)) => {
                    let before = matched.as_ref().map(|(before, _)| before);
                    rekeys.push(before != Some(&index.owners[*at]));
                    steps.place(before, *at, &index.owners[*at]);
                }
                Err(_) => {
                    rekeys.push(false);
                    steps.skip();
                }
            }
            decided.map(|(matched, at)| {
                let id = index.owners[at].id.clone();
                match matched {
                    Some((_, matched_by)) => Decision::Update { id, matched_by },
                    None => Decision::Create(id),
                }
            })
        })
        .collect();
    Plan {
        decisions,
        steps: steps.steps,
        rekeys,
    }
}

/// Decides one item. On success: for an update, the customer's keys before it and how it was
/// matched (None for a new customer); and the customer's position in the index.
type Decided = (Option<(KnownCustomer, MatchedBy)>, usize);

fn decide(
    index: &mut KeyIndex,
    item: &Result<CustomerDraft, ErrorBody>,
    fresh_id: Option<&CustomerId>,
) -> Result<Decided, ErrorBody> {
    let draft = item.as_ref().map_err(Clone::clone)?;
    if let Some((at, matched_by)) = index.find(draft) {
        let before = index.owners[at].clone();
        update(index, at, draft, matched_by)?;
        return Ok((Some((before, matched_by)), at));
    }
    let id = fresh_id.ok_or_else(|| ErrorBody {
        code: ErrorCode::InternalError,
        message: "no id was reserved for this customer".to_owned(),
        field: None,
    })?;
    let keys = KnownCustomer {
        id: id.clone(),
        external_id: draft.external_id.clone(),
        email: draft.email.clone(),
        phone: draft.phone.clone(),
        whatsapp_number: draft.whatsapp_number.clone(),
    };
    // No clash to look for: `find` looked up each of these keys and no customer holds one.
    Ok((None, index.add(keys)))
}

/// Applies an update to the index, unless it would link or take a key it must not.
fn update(
    index: &mut KeyIndex,
    at: usize,
    draft: &CustomerDraft,
    matched_by: MatchedBy,
) -> Result<(), ErrorBody> {
    let stored = &index.owners[at];
    if let (Some(wanted), Some(linked)) = (&draft.external_id, &stored.external_id)
        && wanted != linked
    {
        let key = match matched_by {
            MatchedBy::Email => "email",
            MatchedBy::Phone => "phone",
            MatchedBy::ExternalId => "external_id",
        };
        return Err(ErrorBody {
            code: ErrorCode::Conflict,
            message: format!(
                "matched customer {} by {key}, but it is linked to external_id {linked:?}, not {wanted:?}",
                stored.id
            ),
            field: Some("external_id".to_owned()),
        });
    }
    // Absent fields keep their stored value, exactly as the write does.
    let merged = KnownCustomer {
        id: stored.id.clone(),
        external_id: draft.external_id.clone().or_else(|| stored.external_id.clone()),
        email: draft.email.clone().or_else(|| stored.email.clone()),
        phone: draft.phone.clone().or_else(|| stored.phone.clone()),
        whatsapp_number: draft
            .whatsapp_number
            .clone()
            .or_else(|| stored.whatsapp_number.clone()),
    };
    if let Some(clash) = index.clash(&merged, Some(at)) {
        return Err(clash);
    }
    index.remove_keys(at);
    index.owners[at] = merged;
    index.insert_keys(at);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::customer;
    use serde_json::json;

    fn draft(raw: serde_json::Value) -> Result<CustomerDraft, ErrorBody> {
        customer::parse(raw, None)
    }

    fn ids() -> Vec<CustomerId> {
        (1..=20).map(|n| CustomerId::generate([n; 16])).collect()
    }

    fn stored(n: u8, external_id: Option<&str>, email: Option<&str>, phone: Option<&str>) -> KnownCustomer {
        KnownCustomer {
            id: CustomerId::generate([200 + n; 16]),
            external_id: external_id.map(str::to_owned),
            email: email.and_then(|e| Email::parse(e).ok()),
            phone: phone.and_then(|p| Phone::parse(p, None).ok()),
            whatsapp_number: None,
        }
    }

    fn matched(decision: &Result<Decision, ErrorBody>) -> Option<MatchedBy> {
        match decision {
            Ok(Decision::Update { matched_by, .. }) => Some(*matched_by),
            _ => None,
        }
    }

    #[test]
    fn matching_prefers_external_id_then_email_then_phone() {
        let known = vec![
            stored(1, Some("CRM-1"), Some("one@example.com"), Some("+353871111111")),
            stored(2, None, Some("two@example.com"), Some("+353872222222")),
            stored(3, None, None, Some("+353873333333")),
        ];
        let items = [
            draft(json!({"name": "a", "external_id": "CRM-1", "email": "new@example.com"})),
            draft(json!({"name": "b", "email": "TWO@example.com", "phone": "+353872222222"})),
            draft(json!({"name": "c", "phone": "+353 87 333 3333"})),
            draft(json!({"name": "d", "email": "fresh@example.com"})),
        ];
        let plan = plan(known.clone(), &items, &ids()).decisions;
        assert_eq!(matched(&plan[0]), Some(MatchedBy::ExternalId));
        assert_eq!(matched(&plan[1]), Some(MatchedBy::Email));
        assert_eq!(matched(&plan[2]), Some(MatchedBy::Phone));
        assert!(matches!(plan[3], Ok(Decision::Create(_))));
        assert_eq!(
            plan[1],
            Ok(Decision::Update {
                id: known[1].id.clone(),
                matched_by: MatchedBy::Email
            })
        );
    }

    #[test]
    fn an_item_rekeys_its_customer_only_when_it_gives_a_key_or_whatsapp_number_it_did_not_have() {
        let known = vec![stored(
            1,
            Some("CRM-1"),
            Some("one@example.com"),
            Some("+353871111111"),
        )];
        let cases = [
            (
                json!({"name": "renamed", "external_id": "CRM-1", "email": "ONE@example.com",
                "phone": "+353 87 111 1111"}),
                false,
                "every key as stored, in other spellings",
            ),
            (
                json!({"name": "renamed", "external_id": "CRM-1"}),
                false,
                "keys left out are kept",
            ),
            (
                json!({"name": "a", "external_id": "CRM-1", "email": "new@example.com"}),
                true,
                "a new email",
            ),
            (
                json!({"name": "a", "email": "one@example.com", "phone": "+353872222222"}),
                true,
                "a new phone",
            ),
            (
                json!({"name": "a", "external_id": "CRM-1", "email": "one@example.com",
                "whatsapp_number": "+353871111111"}),
                true,
                "a WhatsApp number where there was none",
            ),
            (
                json!({"name": "a", "email": "someone.else@example.com"}),
                true,
                "a new customer",
            ),
        ];
        for (item, rekeys, what) in cases {
            let planned = plan(known.clone(), &[draft(item)], &ids());
            assert_eq!(planned.rekeys, vec![rekeys], "{what}");
        }
    }

    #[test]
    fn a_key_changed_back_later_in_the_batch_rekeys_again() {
        let known = vec![stored(1, Some("CRM-1"), Some("one@example.com"), None)];
        let items = [
            draft(json!({"name": "a", "external_id": "CRM-1", "email": "two@example.com"})),
            draft(json!({"name": "b", "external_id": "CRM-1", "email": "one@example.com"})),
            draft(json!({"name": "c", "external_id": "CRM-1", "email": "one@example.com"})),
        ];
        let planned = plan(known, &items, &ids());
        assert_eq!(
            planned.rekeys,
            vec![true, true, false],
            "each against the customer as the items before it left it, not as stored"
        );
    }

    #[test]
    fn one_person_named_twice_in_a_batch_is_created_once_and_then_updated() {
        let items = [
            draft(json!({"name": "Joe", "email": "joe@example.com"})),
            draft(json!({"name": "Joe B", "email": "Joe@Example.com", "phone": "+353871234567"})),
            draft(json!({"name": "Joe C", "phone": "+353871234567"})),
        ];
        let plan = plan(vec![], &items, &ids()).decisions;
        let Ok(Decision::Create(created)) = &plan[0] else {
            panic!("first should create: {plan:?}")
        };
        assert_eq!(
            plan[1],
            Ok(Decision::Update {
                id: created.clone(),
                matched_by: MatchedBy::Email
            })
        );
        assert_eq!(
            plan[2],
            Ok(Decision::Update {
                id: created.clone(),
                matched_by: MatchedBy::Phone
            })
        );
    }

    #[test]
    fn a_match_by_email_to_a_customer_linked_to_another_external_id_is_a_conflict() {
        let known = vec![stored(1, Some("CRM-1"), Some("one@example.com"), None)];
        let items = [draft(
            json!({"name": "a", "external_id": "CRM-2", "email": "one@example.com"}),
        )];
        let plan = plan(known, &items, &ids()).decisions;
        let error = plan[0].clone().err();
        assert_eq!(error.as_ref().map(|e| e.code), Some(ErrorCode::Conflict));
        assert_eq!(error.and_then(|e| e.field), Some("external_id".to_owned()));
    }

    #[test]
    fn an_update_cannot_take_an_email_that_belongs_to_someone_else() {
        let known = vec![
            stored(1, Some("CRM-1"), Some("one@example.com"), None),
            stored(2, Some("CRM-2"), Some("two@example.com"), None),
        ];
        let items = [
            draft(json!({"name": "a", "external_id": "CRM-1", "email": "two@example.com"})),
            draft(json!({"name": "a", "external_id": "CRM-1", "email": "uno@example.com"})),
            draft(json!({"name": "n", "email": "one@example.com"})),
        ];
        let plan = plan(known.clone(), &items, &ids()).decisions;
        assert_eq!(
            plan[0].clone().err().and_then(|e| e.field),
            Some("email".to_owned())
        );
        assert_eq!(matched(&plan[1]), Some(MatchedBy::ExternalId));
        // CRM-1 gave up one@example.com in item 1, so item 2 creates a new customer with it.
        assert!(matches!(plan[2], Ok(Decision::Create(_))), "{:?}", plan[2]);
    }

    #[test]
    fn a_customer_without_an_external_id_is_found_by_email_or_phone_and_linked_but_two_crm_records_are_not_merged()
     {
        let known = vec![
            stored(1, Some("CRM-1"), Some("one@example.com"), Some("+353871111111")),
            stored(2, None, Some("walk-in@example.com"), None),
            stored(3, None, None, Some("+353872222222")),
        ];
        let items = [
            draft(json!({"name": "a", "external_id": "CRM-2", "email": "walk-in@example.com"})),
            draft(json!({"name": "b", "external_id": "CRM-3", "phone": "+353872222222"})),
            draft(json!({"name": "c", "external_id": "CRM-4", "phone": "+353871111111"})),
            draft(json!({"name": "d", "email": "one@example.com"})),
        ];
        let plan = plan(known, &items, &ids()).decisions;
        let outcome = |at: usize| match &plan[at] {
            Ok(Decision::Update { id, matched_by }) => format!("{id} by {matched_by:?}"),
            Ok(Decision::Create(_)) => "created".to_owned(),
            Err(error) => format!("{:?} at {:?}", error.code, error.field),
        };
        assert_eq!(
            (0..items.len()).map(outcome).collect::<Vec<_>>(),
            [
                format!("{} by Email", stored(2, None, None, None).id),
                format!("{} by Phone", stored(3, None, None, None).id),
                "Conflict at Some(\"external_id\")".to_owned(),
                format!("{} by Email", stored(1, None, None, None).id),
            ],
            "an unlinked customer takes the item's external_id; a linked one refuses another"
        );
    }

    #[test]
    fn items_that_failed_validation_stay_failed_and_do_not_disturb_the_rest() {
        let items = [
            draft(json!({"name": "a"})),
            draft(json!({"name": "b", "email": "b@example.com"})),
        ];
        let plan = plan(vec![], &items, &ids()).decisions;
        assert!(plan[0].is_err());
        assert!(matches!(plan[1], Ok(Decision::Create(_))));
    }

    #[test]
    fn writes_that_depend_on_earlier_items_of_the_batch_go_to_later_steps() {
        let known = vec![
            stored(1, Some("CRM-1"), Some("one@example.com"), None),
            stored(2, Some("CRM-2"), Some("two@example.com"), None),
        ];
        let items = [
            draft(json!({"name": "a", "external_id": "CRM-1", "email": "uno@example.com"})),
            draft(json!({"name": "b", "external_id": "CRM-2", "phone": "+353871111111"})),
            draft(json!({"name": "c", "email": "one@example.com"})),
            draft(json!({"name": "d", "email": "dos@example.com"})),
            draft(json!({"name": "a again", "external_id": "CRM-1", "email": "uno@example.com"})),
            draft(json!({"name": "bad"})),
        ];
        let plan = plan(known, &items, &ids());
        assert!(
            plan.decisions[..5].iter().all(Result::is_ok),
            "{:?}",
            plan.decisions
        );
        // Item 2 takes the email item 0 gives up: after it. Item 4 names CRM-1 again: after item 0,
        // but in the same step as item 2, which does not touch CRM-1.
        assert_eq!(plan.steps, vec![0, 0, 1, 1, 1, 1]);
    }
}
