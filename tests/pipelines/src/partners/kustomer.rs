//! Kustomer's REST API (v1) as a partner script: the paths our connector calls, with Kustomer's
//! conventions: `Authorization: Bearer <API key>`; one record as `{data: {type, id, attributes,
//! relationships}}`, a list as `{data, links: {next}, meta}` driven by `?page=&pageSize=`; errors
//! as `{errors: [{status, code, title, detail, source}]}`; ids shaped like MongoDB ObjectIds; 404
//! for a customer no email or external id finds; 409 for a second customer with the same email or
//! external id. A test scripts faults with [`Kustomer::fail`] (a status for the next matching
//! calls, 429 with `Retry-After`) and reads what was written from the records kept here.

use super::json_reply;
use edge::runtime::native::{Outbound, Reply, Stack};
use serde_json::{Map, Value, json};
use std::cell::RefCell;
use std::rc::Rc;

/// The most records a list answers with.
const MAX_PAGE_SIZE: usize = 100;

/// One Kustomer organization, reached with one API key.
#[derive(Clone)]
pub struct Kustomer {
    state: Rc<RefCell<State>>,
}

#[derive(Default)]
struct State {
    api_key: String,
    host: String,
    next_id: u64,
    pub customers: Vec<Value>,
    pub conversations: Vec<Value>,
    /// (conversation id, message)
    pub messages: Vec<(String, Value)>,
    pub notes: Vec<(String, Value)>,
    pub teams: Vec<Value>,
    faults: Vec<Fault>,
    pub calls: Vec<Outbound>,
}

/// A scripted failure: the next `times` calls for which `matches` holds answer `reply`.
struct Fault {
    times: usize,
    matches: Box<dyn Fn(&Outbound) -> bool>,
    reply: Reply,
}

impl Kustomer {
    /// An organization at `https://{subdomain}.api.kustomerapp.com`, with teams Support and
    /// Billing, answering calls made with `api_key`.
    pub fn install(stack: &Stack, subdomain: &str, api_key: &str) -> Self {
        let kustomer = Self {
            state: Rc::new(RefCell::new(State {
                api_key: api_key.to_owned(),
                host: format!("{subdomain}.api.kustomerapp.com"),
                ..State::default()
            })),
        };
        for name in ["Support", "Billing"] {
            let id = kustomer.object_id();
            kustomer.state.borrow_mut().teams.push(json!({
                "type": "team", "id": id, "attributes": { "name": name, "displayName": name }
            }));
        }
        let serving = kustomer.clone();
        stack.partner(&kustomer.host(), move |call| serving.answer(call));
        kustomer
    }

    pub fn host(&self) -> String {
        self.state.borrow().host.clone()
    }

    /// The next `times` calls for which `matches` holds are answered `reply`.
    pub fn fail(&self, times: usize, matches: impl Fn(&Outbound) -> bool + 'static, reply: Reply) {
        self.state.borrow_mut().faults.push(Fault {
            times,
            matches: Box::new(matches),
            reply,
        });
    }

    pub fn customers(&self) -> Vec<Value> {
        self.state.borrow().customers.clone()
    }

    pub fn conversations(&self) -> Vec<Value> {
        self.state.borrow().conversations.clone()
    }

    /// The messages on a conversation's timeline, in the order they were written.
    pub fn messages(&self, conversation_id: &str) -> Vec<Value> {
        let state = self.state.borrow();
        state
            .messages
            .iter()
            .filter(|(conversation, _)| conversation == conversation_id)
            .map(|(_, message)| message.clone())
            .collect()
    }

    pub fn notes(&self, conversation_id: &str) -> Vec<Value> {
        let state = self.state.borrow();
        state
            .notes
            .iter()
            .filter(|(conversation, _)| conversation == conversation_id)
            .map(|(_, note)| note.clone())
            .collect()
    }

    pub fn teams(&self) -> Vec<Value> {
        self.state.borrow().teams.clone()
    }

    /// Every call made, answered or not.
    pub fn calls(&self) -> Vec<Outbound> {
        self.state.borrow().calls.clone()
    }

    /// A customer Kustomer already has (made in Kustomer, not by us).
    pub fn seed_customer(&self, attributes: Value) -> Value {
        self.create_customer(&attributes)
            .unwrap_or_else(|reply| panic!("seeding a customer: {reply:?}"))
    }

    fn object_id(&self) -> String {
        let mut state = self.state.borrow_mut();
        state.next_id += 1;
        format!("5f3c1a2b4d5e6f7a{:08x}", state.next_id)
    }

    fn answer(&self, call: &Outbound) -> Reply {
        self.state.borrow_mut().calls.push(call.clone());
        let fault = {
            let mut state = self.state.borrow_mut();
            let at = state
                .faults
                .iter()
                .position(|fault| fault.times > 0 && (fault.matches)(call));
            at.map(|at| {
                state.faults[at].times -= 1;
                state.faults[at].reply.clone()
            })
        };
        if let Some(reply) = fault {
            return reply;
        }
        let expected = format!("Bearer {}", self.state.borrow().api_key);
        if call.header("authorization") != Some(expected.as_str()) {
            return error(401, "Invalid or missing API key", None);
        }
        match self.route(call) {
            Ok(reply) => reply,
            Err(reply) => reply,
        }
    }

    fn route(&self, call: &Outbound) -> Result<Reply, Reply> {
        let path = call.path().to_owned();
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let body = || -> Result<Value, Reply> {
            serde_json::from_slice(&call.body).map_err(|_| error(400, "The body is not JSON", None))
        };
        let decode = |segment: &str| {
            domain::query::Query::parse(Some(&format!("v={segment}")))
                .get("v")
                .unwrap_or_default()
                .to_owned()
        };
        match (call.method.as_str(), segments.as_slice()) {
            ("GET", ["v1", "users", "current"]) => Ok(json_reply(
                200,
                &json!({ "data": {
                    "type": "user", "id": "5f3c1a2b4d5e6f7a00000001",
                    "attributes": { "name": "ChatBot Integration", "email": "bot@acme.example", "userType": "machine" }
                }}),
            )),
            ("GET", ["v1", "customers", lookup]) if lookup.starts_with("email=") => {
                let email = decode(&lookup["email=".len()..]).to_lowercase();
                let found = self.find_customer(|customer| {
                    customer["attributes"]["emails"].as_array().is_some_and(|emails| {
                        emails
                            .iter()
                            .any(|e| e["email"].as_str().map(str::to_lowercase).as_deref() == Some(&email))
                    })
                });
                found
                    .map(|customer| json_reply(200, &json!({ "data": customer })))
                    .ok_or_else(|| error(404, &format!("No customer with email {email}"), None))
            }
            ("GET", ["v1", "customers", lookup]) if lookup.starts_with("externalId=") => {
                let external = decode(&lookup["externalId=".len()..]);
                self.find_customer(|customer| customer["attributes"]["externalId"] == external)
                    .map(|customer| json_reply(200, &json!({ "data": customer })))
                    .ok_or_else(|| error(404, &format!("No customer with externalId {external}"), None))
            }
            ("GET", ["v1", "customers", id, "conversations"]) => {
                let id = (*id).to_owned();
                self.customer(&id)?;
                let own: Vec<Value> = self
                    .conversations()
                    .into_iter()
                    .filter(|conversation| {
                        conversation["relationships"]["customer"]["data"]["id"] == id.as_str()
                    })
                    .collect();
                Ok(page(own, call))
            }
            ("GET", ["v1", "customers", id]) => Ok(json_reply(200, &json!({ "data": self.customer(id)? }))),
            ("PUT", ["v1", "customers", id]) => {
                let id = (*id).to_owned();
                let given = body()?;
                self.customer(&id)?;
                self.check_unique(&given, Some(&id))?;
                let mut state = self.state.borrow_mut();
                let customer = state
                    .customers
                    .iter_mut()
                    .find(|customer| customer["id"] == id.as_str())
                    .ok_or_else(|| error(404, "Customer not found", None))?;
                if let (Some(attributes), Some(given)) =
                    (customer["attributes"].as_object_mut(), given.as_object())
                {
                    for (key, value) in given {
                        attributes.insert(key.clone(), value.clone());
                    }
                }
                Ok(json_reply(200, &json!({ "data": customer })))
            }
            ("POST", ["v1", "customers"]) => {
                let customer = self.create_customer(&body()?)?;
                Ok(json_reply(201, &json!({ "data": customer })))
            }
            ("POST", ["v1", "conversations"]) => {
                let given = body()?;
                let customer_id = given["customer"]
                    .as_str()
                    .ok_or_else(|| error(400, "customer is required (a customer id)", Some("/customer")))?
                    .to_owned();
                if self.customer(&customer_id).is_err() {
                    return Err(error(
                        400,
                        &format!("Customer not found: {customer_id}"),
                        Some("/customer"),
                    ));
                }
                let id = self.object_id();
                let mut attributes = Map::new();
                attributes.insert("status".into(), json!("open"));
                attributes.insert("priority".into(), json!(3));
                attributes.insert("assignedTeams".into(), json!([]));
                attributes.insert("assignedUsers".into(), json!([]));
                if let Some(given) = given.as_object() {
                    for (key, value) in given.iter().filter(|(key, _)| *key != "customer") {
                        attributes.insert(key.clone(), value.clone());
                    }
                }
                attributes.insert("messageCount".into(), json!(0));
                let conversation = json!({
                    "type": "conversation", "id": id, "attributes": attributes,
                    "relationships": { "customer": { "data": { "type": "customer", "id": customer_id } } }
                });
                self.state.borrow_mut().conversations.push(conversation.clone());
                Ok(json_reply(201, &json!({ "data": conversation })))
            }
            ("GET", ["v1", "conversations", id]) => {
                Ok(json_reply(200, &json!({ "data": self.conversation(id)? })))
            }
            ("PATCH", ["v1", "conversations", id]) => {
                let id = (*id).to_owned();
                let given = body()?;
                self.conversation(&id)?;
                let mut state = self.state.borrow_mut();
                let conversation = state
                    .conversations
                    .iter_mut()
                    .find(|conversation| conversation["id"] == id.as_str())
                    .ok_or_else(|| error(404, "Conversation not found", None))?;
                if let (Some(attributes), Some(given)) =
                    (conversation["attributes"].as_object_mut(), given.as_object())
                {
                    for (key, value) in given {
                        attributes.insert(key.clone(), value.clone());
                    }
                }
                Ok(json_reply(200, &json!({ "data": conversation })))
            }
            ("POST", ["v1", "conversations", id, kind @ ("messages" | "notes")]) => {
                let conversation_id = (*id).to_owned();
                self.conversation(&conversation_id)?;
                let given = body()?;
                if *kind == "messages" {
                    for required in ["channel", "app", "direction"] {
                        if given[required].as_str().is_none_or(str::is_empty) {
                            return Err(error(
                                400,
                                &format!("{required} is required"),
                                Some(&format!("/{required}")),
                            ));
                        }
                    }
                } else if given["body"].as_str().is_none_or(str::is_empty) {
                    return Err(error(400, "body is required (a string)", Some("/body")));
                }
                let record = json!({
                    "type": if *kind == "messages" { "message" } else { "note" },
                    "id": self.object_id(),
                    "attributes": given,
                    "relationships": { "conversation": { "data": { "type": "conversation", "id": conversation_id } } }
                });
                let mut state = self.state.borrow_mut();
                if *kind == "messages" {
                    state.messages.push((conversation_id.clone(), record.clone()));
                    if let Some(conversation) = state
                        .conversations
                        .iter_mut()
                        .find(|c| c["id"] == conversation_id.as_str())
                    {
                        let count = conversation["attributes"]["messageCount"].as_u64().unwrap_or(0) + 1;
                        conversation["attributes"]["messageCount"] = json!(count);
                    }
                } else {
                    state.notes.push((conversation_id, record.clone()));
                }
                Ok(json_reply(201, &json!({ "data": record })))
            }
            ("GET", ["v1", "conversations", id, kind @ ("messages" | "notes")]) => {
                self.conversation(id)?;
                let records = if *kind == "messages" {
                    self.messages(id)
                } else {
                    self.notes(id)
                };
                Ok(page(records, call))
            }
            ("GET", ["v1", "teams"]) => Ok(page(self.teams(), call)),
            _ => Err(error(
                404,
                &format!("No route {} {}", call.method, call.path()),
                None,
            )),
        }
    }

    fn find_customer(&self, matches: impl Fn(&Value) -> bool) -> Option<Value> {
        self.state
            .borrow()
            .customers
            .iter()
            .find(|customer| matches(customer))
            .cloned()
    }

    fn customer(&self, id: &str) -> Result<Value, Reply> {
        self.find_customer(|customer| customer["id"] == id)
            .ok_or_else(|| error(404, &format!("Customer not found: {id}"), None))
    }

    fn conversation(&self, id: &str) -> Result<Value, Reply> {
        let state = self.state.borrow();
        state
            .conversations
            .iter()
            .find(|conversation| conversation["id"] == id)
            .cloned()
            .ok_or_else(|| error(404, &format!("Conversation not found: {id}"), None))
    }

    /// Kustomer keeps one customer per email and per external id in an organization.
    fn check_unique(&self, given: &Value, except: Option<&str>) -> Result<(), Reply> {
        let others = |matches: &dyn Fn(&Value) -> bool| {
            self.find_customer(|customer| {
                Some(customer["id"].as_str().unwrap_or_default()) != except && matches(customer)
            })
        };
        if let Some(external) = given["externalId"].as_str()
            && others(&|customer| customer["attributes"]["externalId"] == external).is_some()
        {
            return Err(error(
                409,
                &format!("A customer with externalId {external} already exists"),
                Some("/externalId"),
            ));
        }
        for email in given["emails"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e["email"].as_str())
        {
            let wanted = email.to_lowercase();
            let taken = others(&|customer| {
                customer["attributes"]["emails"].as_array().is_some_and(|emails| {
                    emails
                        .iter()
                        .any(|e| e["email"].as_str().map(str::to_lowercase).as_deref() == Some(&wanted))
                })
            });
            if taken.is_some() {
                return Err(error(
                    409,
                    &format!("A customer with email {email} already exists"),
                    Some("/emails"),
                ));
            }
        }
        Ok(())
    }

    fn create_customer(&self, given: &Value) -> Result<Value, Reply> {
        if !given.is_object() {
            return Err(error(400, "The body must be an object", None));
        }
        self.check_unique(given, None)?;
        let mut attributes = Map::new();
        for (key, empty) in [
            ("emails", json!([])),
            ("phones", json!([])),
            ("whatsapps", json!([])),
            ("tags", json!([])),
        ] {
            attributes.insert(key.to_owned(), empty);
        }
        if let Some(given) = given.as_object() {
            for (key, value) in given {
                attributes.insert(key.clone(), value.clone());
            }
        }
        let customer = json!({ "type": "customer", "id": self.object_id(), "attributes": attributes });
        self.state.borrow_mut().customers.push(customer.clone());
        Ok(customer)
    }
}

/// A page of `records` as Kustomer lists them (`?page=`, `?pageSize=` up to 100).
fn page(records: Vec<Value>, call: &Outbound) -> Reply {
    let query = call.query();
    let size = query
        .get("pageSize")
        .and_then(|size| size.parse::<usize>().ok())
        .unwrap_or(25)
        .clamp(1, MAX_PAGE_SIZE);
    let number = query
        .get("page")
        .and_then(|page| page.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    let start = (number - 1) * size;
    let data: Vec<Value> = records.iter().skip(start).take(size).cloned().collect();
    let next = (start + size < records.len())
        .then(|| format!("{}?page={}&pageSize={size}", call.path(), number + 1));
    json_reply(
        200,
        &json!({ "data": data, "links": { "next": next }, "meta": { "page": number, "pageSize": size } }),
    )
}

/// Kustomer's error document.
pub fn error(status: u16, detail: &str, pointer: Option<&str>) -> Reply {
    let (code, title) = match status {
        400 => ("bad_request", "Bad Request"),
        401 => ("unauthorized", "Unauthorized"),
        403 => ("forbidden", "Forbidden"),
        404 => ("not_found", "Not Found"),
        409 => ("conflict", "Conflict"),
        429 => ("too_many_requests", "Too Many Requests"),
        _ => ("internal_error", "Internal Server Error"),
    };
    let mut error = json!({ "status": status.to_string(), "code": code, "title": title, "detail": detail });
    if let Some(pointer) = pointer {
        error["source"] = json!({ "pointer": pointer });
    }
    json_reply(status, &json!({ "errors": [error] }))
}
