//! Salesforce's Outbound Messages: what an org's workflow sends when a Contact or a Case changes,
//! a SOAP 1.1 `notifications` call of 1 to 100 `Notification`s, each the record's id and the
//! fields the business chose, answered with `<Ack>true</Ack>`.
//!
//! Salesforce signs nothing: the endpoint's address carries a secret segment, and each message
//! names the org it comes from, which must be the connector's. Delivery is at least once: a
//! message unacknowledged is sent again for 24 hours, possibly out of order, and one
//! acknowledged may come again, so each notification is applied once by its id and never over a
//! newer state of its record.
//!
//! The reader is strict and small, for this one document's shape: a size limit, UTF-8 only, no
//! DOCTYPE or entity declarations (so no entity expansion), only XML's five named entities and
//! character references, a depth and an element limit, namespaces resolved and required.

use super::ids::{OrganizationId, SalesforceId};
use crate::time::Timestamp;
use std::collections::{BTreeMap, HashSet};
use std::fmt;

/// The largest message read: 100 notifications of a few dozen fields each fit many times over;
/// a Description of 32,000 characters on every one of them does not, which is why the setup
/// guide asks for only the fields the connector reads.
pub const BODY_LIMIT: usize = 2 * 1024 * 1024;
/// A message carries at most this many notifications.
pub const MAX_NOTIFICATIONS: usize = 100;
/// How long a notification's id is remembered: Salesforce retries for 24 hours, so a
/// notification seen a day and an hour ago cannot come again.
pub const REMEMBER_SECONDS: i64 = 25 * 3600;
/// The answer's content type (SOAP 1.1).
pub const CONTENT_TYPE: &str = "text/xml; charset=utf-8";
/// Envelope, Header or Body, notifications, Notification, sObject, a field: six levels; a few
/// more are allowed, no more.
const MAX_DEPTH: usize = 10;
/// 100 notifications of up to ~300 fields.
const MAX_ELEMENTS: usize = 32_000;
const MAX_ATTRIBUTES: usize = 16;
const MAX_NAME_BYTES: usize = 128;

const SOAP_ENVELOPE: &str = "http://schemas.xmlsoap.org/soap/envelope/";
const OUTBOUND: &str = "http://soap.sforce.com/2005/09/outbound";
const SOBJECT: &str = "urn:sobject.enterprise.soap.sforce.com";
const XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";
const XML: &str = "http://www.w3.org/XML/1998/namespace";

/// The answer that acknowledges every notification of a message.
pub const ACK: &str = concat!(
    r#"<?xml version="1.0" encoding="UTF-8"?>"#,
    r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">"#,
    r#"<soapenv:Body><notificationsResponse xmlns="http://soap.sforce.com/2005/09/outbound">"#,
    r#"<Ack>true</Ack></notificationsResponse></soapenv:Body></soapenv:Envelope>"#,
);

/// Why a delivery is refused. Salesforce keeps a refused message and sends it again (for 24
/// hours), and shows the reason in its Outbound Messages monitor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutboundRefusal {
    TooLarge {
        bytes: usize,
    },
    /// Not well-formed XML, or not UTF-8.
    NotXml(String),
    /// A DOCTYPE, an entity declaration or another markup declaration.
    Declaration,
    TooDeep,
    TooManyElements,
    /// Well-formed, but not an Outbound Message (another element, another namespace).
    NotNotifications(String),
    Missing(&'static str),
    TooManyNotifications(usize),
    /// From an org that is not the connector's.
    WrongOrganization,
    /// A notification of an object the connector does not follow.
    UnsupportedObject(String),
    /// A value that is not what the WSDL says (an id that is not one, a field given twice).
    Malformed(String),
}

impl OutboundRefusal {
    /// The status the refusal is answered with.
    pub fn status(&self) -> u16 {
        match self {
            Self::TooLarge { .. } | Self::TooManyElements => 413,
            Self::WrongOrganization => 403,
            Self::UnsupportedObject(_) => 422,
            _ => 400,
        }
    }
}

impl fmt::Display for OutboundRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLarge { bytes } => write!(
                f,
                "the message is {bytes} bytes, over the {BODY_LIMIT}-byte limit: send only the fields the connector reads"
            ),
            Self::NotXml(why) => write!(f, "the body is not well-formed XML: {why}"),
            Self::Declaration => {
                f.write_str("the body declares a DOCTYPE or entities, which an Outbound Message never does")
            }
            Self::TooDeep => write!(f, "the body nests elements deeper than {MAX_DEPTH}"),
            Self::TooManyElements => write!(f, "the body has more than {MAX_ELEMENTS} elements"),
            Self::NotNotifications(what) => write!(f, "the body is not an Outbound Message: {what}"),
            Self::Missing(what) => write!(f, "the Outbound Message has no {what}"),
            Self::TooManyNotifications(count) => write!(
                f,
                "the Outbound Message has {count} notifications; Salesforce sends at most {MAX_NOTIFICATIONS}"
            ),
            Self::WrongOrganization => {
                f.write_str("the Outbound Message comes from an org this connector is not for")
            }
            Self::UnsupportedObject(kind) => write!(
                f,
                "the Outbound Message is for {kind} records; this connector follows Contact and Case"
            ),
            Self::Malformed(what) => write!(f, "the Outbound Message is malformed: {what}"),
        }
    }
}

/// A SOAP 1.1 fault saying why the message was refused (a client fault: sending it again as it is
/// cannot help).
pub fn fault(refusal: &OutboundRefusal) -> String {
    format!(
        concat!(
            r#"<?xml version="1.0" encoding="UTF-8"?>"#,
            r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">"#,
            r#"<soapenv:Body><soapenv:Fault><faultcode>soapenv:Client</faultcode>"#,
            r#"<faultstring>{}</faultstring></soapenv:Fault></soapenv:Body></soapenv:Envelope>"#,
        ),
        crate::text::escape_html(&refusal.to_string())
    )
}

/// Whether the address's secret segment is the connector's, compared in constant time.
pub fn token_matches(expected: &str, presented: &str) -> bool {
    !expected.is_empty() && crate::crypto::constant_time_eq(expected.as_bytes(), presented.as_bytes())
}

/// The objects whose changes the connector follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifiedObject {
    Contact,
    Case,
}

/// One notification: a record of `object` as it was when Salesforce sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// The notification's own id, the same each time it is sent again.
    pub id: SalesforceId,
    pub object: NotifiedObject,
    /// The record's id; none when the record was deleted before the message went out.
    pub record_id: Option<SalesforceId>,
    /// The fields the business chose, by API name; None is a field sent as nil.
    pub fields: BTreeMap<String, Option<String>>,
}

/// What a notification means for the connector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A Contact changed: `fields` is what it holds now.
    ContactChanged {
        contact: SalesforceId,
        fields: BTreeMap<String, Option<String>>,
    },
    /// A Contact was deleted: a customer kept there is made again.
    ContactDeleted { contact: SalesforceId },
    /// A Contact was merged into another: what was kept on it is now on `into`.
    ContactMerged {
        contact: SalesforceId,
        into: SalesforceId,
    },
    /// A Case's status, as it is now.
    CaseChanged {
        case: SalesforceId,
        status: Option<String>,
        closed: Option<bool>,
    },
    /// The record was deleted before Salesforce sent the message, which then carries no data:
    /// nothing to apply.
    Emptied,
}

impl Notification {
    fn text(&self, name: &str) -> Option<&str> {
        self.fields
            .get(name)?
            .as_deref()
            .map(str::trim)
            .filter(|text| !text.is_empty())
    }

    fn flag(&self, name: &str) -> Option<bool> {
        match self.text(name)? {
            "true" | "1" => Some(true),
            "false" | "0" => Some(false),
            _ => None,
        }
    }

    /// When the record was last changed, from `SystemModstamp` (or `LastModifiedDate`) when the
    /// business sends one: a notification older than what was applied is not applied over it.
    pub fn modified_at(&self) -> Option<Timestamp> {
        ["SystemModstamp", "LastModifiedDate"]
            .iter()
            .find_map(|name| Timestamp::parse_rfc3339(self.text(name)?))
    }

    /// Whether a state of the record newer than this one was applied already (`applied`: the
    /// modification time of what was applied last).
    pub fn is_stale(&self, applied: Option<Timestamp>) -> bool {
        matches!((self.modified_at(), applied), (Some(this), Some(applied)) if this < applied)
    }

    pub fn change(&self) -> Change {
        let Some(record) = self.record_id.clone() else {
            return Change::Emptied;
        };
        match self.object {
            NotifiedObject::Contact => {
                let master = self.text("MasterRecordId").and_then(SalesforceId::parse);
                match (master, self.flag("IsDeleted")) {
                    (Some(into), _) if into != record => Change::ContactMerged {
                        contact: record,
                        into,
                    },
                    (_, Some(true)) => Change::ContactDeleted { contact: record },
                    _ => Change::ContactChanged {
                        contact: record,
                        fields: self.fields.clone(),
                    },
                }
            }
            NotifiedObject::Case => Change::CaseChanged {
                case: record,
                status: self.text("Status").map(str::to_owned),
                closed: self.flag("IsClosed"),
            },
        }
    }
}

/// An Outbound Message from the connector's org.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundMessage {
    pub organization_id: OrganizationId,
    /// The workflow rule (action) that sent it.
    pub action_id: SalesforceId,
    /// Whether it carried a session id. The connector never keeps nor uses one (it has its own
    /// tokens): the setup guide asks to leave "Send Session ID" off, and the console can say so.
    pub carried_session: bool,
    pub notifications: Vec<Notification>,
}

impl OutboundMessage {
    /// The message in `body`, from the org `organization` (the connector's): anything else is
    /// refused, and nothing of a refused message is kept.
    pub fn parse(body: &[u8], organization: &OrganizationId) -> Result<Self, OutboundRefusal> {
        if body.len() > BODY_LIMIT {
            return Err(OutboundRefusal::TooLarge { bytes: body.len() });
        }
        let text =
            std::str::from_utf8(body).map_err(|_| OutboundRefusal::NotXml("it is not UTF-8".to_owned()))?;
        let root = Reader::new(text).document()?;
        let message = read_message(&root)?;
        if message.organization_id != *organization {
            return Err(OutboundRefusal::WrongOrganization);
        }
        Ok(message)
    }

    /// The notifications not applied yet, each once (`seen`: whether a notification's id was
    /// applied within [`REMEMBER_SECONDS`]; a message may also carry one twice).
    pub fn unseen(&self, seen: impl Fn(&SalesforceId) -> bool) -> Vec<&Notification> {
        let mut taken = HashSet::new();
        self.notifications
            .iter()
            .filter(|notification| !seen(&notification.id) && taken.insert(notification.id.clone()))
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// The document

/// An element as read: its resolved name, its text, its children, and the two XML Schema
/// instance attributes this document uses.
#[derive(Debug, Default)]
struct Element {
    namespace: Option<String>,
    local: String,
    text: String,
    children: Vec<Element>,
    /// `xsi:type`, resolved: (namespace, local name).
    schema_type: Option<(Option<String>, String)>,
    nil: bool,
}

impl Element {
    fn is(&self, namespace: &str, local: &str) -> bool {
        self.namespace.as_deref() == Some(namespace) && self.local == local
    }

    fn name(&self) -> String {
        match &self.namespace {
            Some(namespace) => format!("{{{namespace}}}{}", self.local),
            None => self.local.clone(),
        }
    }
}

/// Refuses text beside the children of an element that holds only elements.
fn only_elements(element: &Element) -> Result<(), OutboundRefusal> {
    if element.text.trim().is_empty() {
        Ok(())
    } else {
        Err(OutboundRefusal::Malformed(format!(
            "{} holds text",
            element.local
        )))
    }
}

fn read_message(root: &Element) -> Result<OutboundMessage, OutboundRefusal> {
    let not = |what: String| OutboundRefusal::NotNotifications(what);
    if !root.is(SOAP_ENVELOPE, "Envelope") {
        return Err(not(format!(
            "its root is {}, not a SOAP 1.1 Envelope",
            root.name()
        )));
    }
    let mut body = None;
    for (at, child) in root.children.iter().enumerate() {
        match (at, child.namespace.as_deref(), child.local.as_str()) {
            (0, Some(SOAP_ENVELOPE), "Header") => {}
            (_, Some(SOAP_ENVELOPE), "Body") if body.is_none() => body = Some(child),
            _ => return Err(not(format!("the Envelope holds {}", child.name()))),
        }
    }
    let body = body.ok_or(OutboundRefusal::Missing("SOAP Body"))?;
    only_elements(root)?;
    only_elements(body)?;
    let [notifications] = body.children.as_slice() else {
        return Err(not(format!(
            "its Body holds {} elements, not one notifications",
            body.children.len()
        )));
    };
    if !notifications.is(OUTBOUND, "notifications") {
        return Err(not(format!("its Body holds {}", notifications.name())));
    }
    only_elements(notifications)?;

    let mut organization = None;
    let mut action = None;
    let mut carried_session = false;
    let mut items = Vec::new();
    for child in &notifications.children {
        if child.namespace.as_deref() != Some(OUTBOUND) {
            return Err(not(format!("notifications holds {}", child.name())));
        }
        let once = |slot: &Option<&Element>| {
            if slot.is_some() {
                Err(OutboundRefusal::Malformed(format!(
                    "{} is given twice",
                    child.local
                )))
            } else {
                Ok(())
            }
        };
        match child.local.as_str() {
            "OrganizationId" => {
                once(&organization)?;
                organization = Some(child);
            }
            "ActionId" => {
                once(&action)?;
                action = Some(child);
            }
            "SessionId" => carried_session = !child.nil && !child.text.trim().is_empty(),
            "EnterpriseUrl" | "PartnerUrl" => {}
            "Notification" => {
                if items.len() == MAX_NOTIFICATIONS {
                    let count = notifications
                        .children
                        .iter()
                        .filter(|child| child.is(OUTBOUND, "Notification"))
                        .count();
                    return Err(OutboundRefusal::TooManyNotifications(count));
                }
                items.push(read_notification(child)?);
            }
            other => return Err(not(format!("notifications holds {other}"))),
        }
    }
    let organization_id = organization
        .ok_or(OutboundRefusal::Missing("OrganizationId"))
        .and_then(|element| {
            OrganizationId::parse(&element.text).ok_or_else(|| {
                OutboundRefusal::Malformed("OrganizationId is not an organization's id".to_owned())
            })
        })?;
    let action_id = action
        .ok_or(OutboundRefusal::Missing("ActionId"))
        .and_then(|element| {
            SalesforceId::parse(&element.text)
                .ok_or_else(|| OutboundRefusal::Malformed("ActionId is not an id".to_owned()))
        })?;
    if items.is_empty() {
        return Err(OutboundRefusal::Missing("Notification"));
    }
    Ok(OutboundMessage {
        organization_id,
        action_id,
        carried_session,
        notifications: items,
    })
}

fn read_notification(element: &Element) -> Result<Notification, OutboundRefusal> {
    only_elements(element)?;
    let mut id = None;
    let mut sobject = None;
    for child in &element.children {
        match (child.namespace.as_deref(), child.local.as_str()) {
            (Some(OUTBOUND), "Id") if id.is_none() => id = Some(child),
            (Some(OUTBOUND), "sObject") if sobject.is_none() => sobject = Some(child),
            _ => {
                return Err(OutboundRefusal::Malformed(format!(
                    "a Notification holds {}",
                    child.name()
                )));
            }
        }
    }
    let id = id
        .ok_or(OutboundRefusal::Missing("Notification Id"))
        .and_then(|id| {
            SalesforceId::parse(&id.text)
                .ok_or_else(|| OutboundRefusal::Malformed("a Notification's Id is not an id".to_owned()))
        })?;
    let sobject = sobject.ok_or(OutboundRefusal::Missing("Notification sObject"))?;
    only_elements(sobject)?;
    let object = match &sobject.schema_type {
        Some((Some(namespace), local)) if namespace == SOBJECT => match local.as_str() {
            "Contact" => NotifiedObject::Contact,
            "Case" => NotifiedObject::Case,
            other => return Err(OutboundRefusal::UnsupportedObject(other.to_owned())),
        },
        Some((namespace, local)) => {
            return Err(OutboundRefusal::NotNotifications(format!(
                "an sObject's type is {local} in {}",
                namespace.as_deref().unwrap_or("no namespace")
            )));
        }
        None => return Err(OutboundRefusal::Missing("sObject xsi:type")),
    };
    let mut record_id = None;
    let mut fields = BTreeMap::new();
    for field in &sobject.children {
        if field.namespace.as_deref() != Some(SOBJECT) {
            return Err(OutboundRefusal::NotNotifications(format!(
                "an sObject holds {}",
                field.name()
            )));
        }
        if !field.children.is_empty() {
            return Err(OutboundRefusal::Malformed(format!(
                "the field {} holds elements",
                field.local
            )));
        }
        if field.local == "fieldsToNull" {
            continue;
        }
        let value = (!field.nil).then(|| field.text.clone());
        if field.local == "Id" {
            record_id = match value.as_deref() {
                Some(text) => Some(
                    SalesforceId::parse(text)
                        .ok_or_else(|| OutboundRefusal::Malformed("a record's Id is not an id".to_owned()))?,
                ),
                None => None,
            };
        }
        if fields.insert(field.local.clone(), value).is_some() {
            return Err(OutboundRefusal::Malformed(format!(
                "the field {} is given twice",
                field.local
            )));
        }
    }
    Ok(Notification {
        id,
        object,
        record_id,
        fields,
    })
}

// ---------------------------------------------------------------------------------------------
// The reader

/// A strict reader of one XML document into [`Element`]s, with namespaces resolved.
struct Reader<'a> {
    text: &'a str,
    at: usize,
    /// In-scope namespace bindings (prefix, or None for the default namespace), innermost last.
    bindings: Vec<(Option<String>, String)>,
    elements: usize,
}

fn not_xml(why: impl Into<String>) -> OutboundRefusal {
    OutboundRefusal::NotXml(why.into())
}

impl<'a> Reader<'a> {
    fn new(text: &'a str) -> Self {
        Self {
            text: text.strip_prefix('\u{feff}').unwrap_or(text),
            at: 0,
            bindings: vec![(Some("xml".to_owned()), XML.to_owned())],
            elements: 0,
        }
    }

    fn rest(&self) -> &'a str {
        self.text.get(self.at..).unwrap_or_default()
    }

    fn skip_whitespace(&mut self) {
        let rest = self.rest();
        self.at += rest.len() - rest.trim_start_matches([' ', '\t', '\r', '\n']).len();
    }

    /// The document: an optional XML declaration (UTF-8 only), comments and whitespace, one root
    /// element, comments and whitespace.
    fn document(mut self) -> Result<Element, OutboundRefusal> {
        if self.rest().starts_with("<?xml") {
            let end = self
                .rest()
                .find("?>")
                .ok_or_else(|| not_xml("the XML declaration does not end"))?;
            let declaration = &self.rest()[..end];
            let lower = declaration.to_ascii_lowercase();
            if let Some((_, encoding)) = lower.split_once("encoding") {
                let name = encoding
                    .trim_start_matches([' ', '=', '"', '\''])
                    .split(['"', '\''])
                    .next()
                    .unwrap_or_default();
                if name != "utf-8" {
                    return Err(not_xml(format!("it declares the encoding {name}, not UTF-8")));
                }
            }
            self.at += end + 2;
        }
        self.misc()?;
        if !self.rest().starts_with('<') {
            return Err(not_xml("there is no root element"));
        }
        let root = self.element()?;
        self.misc()?;
        if !self.rest().is_empty() {
            return Err(not_xml("something follows the root element"));
        }
        Ok(root)
    }

    /// Whitespace and comments outside the root; a declaration or a processing instruction is
    /// refused.
    fn misc(&mut self) -> Result<(), OutboundRefusal> {
        loop {
            self.skip_whitespace();
            let rest = self.rest();
            if rest.starts_with("<!--") {
                self.comment()?;
            } else if rest.starts_with("<!") {
                return Err(OutboundRefusal::Declaration);
            } else if rest.starts_with("<?") {
                return Err(not_xml("a processing instruction"));
            } else {
                return Ok(());
            }
        }
    }

    fn comment(&mut self) -> Result<(), OutboundRefusal> {
        let end = self.rest()[4..]
            .find("-->")
            .ok_or_else(|| not_xml("a comment does not end"))?;
        self.at += 4 + end + 3;
        Ok(())
    }

    /// One element and everything in it, read without recursion (an explicit stack), so that
    /// nesting is bounded by [`MAX_DEPTH`], not by the machine's stack.
    fn element(&mut self) -> Result<Element, OutboundRefusal> {
        // Each open element with its raw name and how many bindings it added.
        let mut open: Vec<(Element, String, usize)> = Vec::new();
        loop {
            let rest = self.rest();
            if rest.starts_with("</") {
                let (element, raw, added) =
                    open.pop().ok_or_else(|| not_xml("an end tag without a start"))?;
                self.at += 2;
                let name = self.name()?;
                if name != raw {
                    return Err(not_xml(format!("<{raw}> ends with </{name}>")));
                }
                self.skip_whitespace();
                if !self.rest().starts_with('>') {
                    return Err(not_xml(format!("</{name} does not end with >")));
                }
                self.at += 1;
                self.bindings.truncate(self.bindings.len() - added);
                match open.last_mut() {
                    Some((parent, _, _)) => parent.children.push(element),
                    None => return Ok(element),
                }
            } else if rest.starts_with("<!--") {
                self.comment()?;
            } else if let Some(section) = rest.strip_prefix("<![CDATA[") {
                let (current, _, _) = open
                    .last_mut()
                    .ok_or_else(|| not_xml("CDATA outside an element"))?;
                let end = section
                    .find("]]>")
                    .ok_or_else(|| not_xml("a CDATA section does not end"))?;
                check_chars(&section[..end])?;
                current.text.push_str(&section[..end]);
                self.at += 9 + end + 3;
            } else if rest.starts_with("<!") {
                return Err(OutboundRefusal::Declaration);
            } else if rest.starts_with("<?") {
                return Err(not_xml("a processing instruction"));
            } else if rest.starts_with('<') {
                if open.len() >= MAX_DEPTH {
                    return Err(OutboundRefusal::TooDeep);
                }
                self.elements += 1;
                if self.elements > MAX_ELEMENTS {
                    return Err(OutboundRefusal::TooManyElements);
                }
                self.at += 1;
                let (element, raw, added, empty) = self.start_tag()?;
                if empty {
                    self.bindings.truncate(self.bindings.len() - added);
                    match open.last_mut() {
                        Some((parent, _, _)) => parent.children.push(element),
                        None => return Ok(element),
                    }
                } else {
                    open.push((element, raw, added));
                }
            } else {
                let end = rest.find('<').unwrap_or(rest.len());
                let raw = &rest[..end];
                match open.last_mut() {
                    Some((current, _, _)) => current.text.push_str(&decode(raw)?),
                    None => return Err(not_xml("text outside the root element")),
                }
                if end == rest.len() {
                    return Err(not_xml("the document ends inside an element"));
                }
                self.at += end;
            }
        }
    }

    /// A name (with its prefix): ASCII letters, digits, `_`, `-`, `.` and at most one `:`.
    fn name(&mut self) -> Result<String, OutboundRefusal> {
        let rest = self.rest();
        let length = rest
            .bytes()
            .take_while(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'-' | b'.' | b':'))
            .count();
        let name = &rest[..length];
        let valid = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && name.len() <= MAX_NAME_BYTES
            && name.matches(':').count() <= 1
            && !name.ends_with(':')
            && !name.contains(":-")
            && !name.contains(":.")
            && name
                .split(':')
                .all(|part| part.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_'));
        if !valid {
            return Err(not_xml(format!(
                "{:?} is not a name",
                rest.chars().take(20).collect::<String>()
            )));
        }
        self.at += length;
        Ok(name.to_owned())
    }

    /// A start tag after its `<`: the element (its name resolved), its raw name, how many
    /// namespace bindings it added, and whether it was empty (`/>`).
    fn start_tag(&mut self) -> Result<(Element, String, usize, bool), OutboundRefusal> {
        let raw = self.name()?;
        let mut attributes: Vec<(String, String)> = Vec::new();
        let empty = loop {
            let before = self.at;
            self.skip_whitespace();
            let rest = self.rest();
            if rest.starts_with("/>") {
                self.at += 2;
                break true;
            }
            if rest.starts_with('>') {
                self.at += 1;
                break false;
            }
            if rest.is_empty() {
                return Err(not_xml(format!("<{raw} does not end")));
            }
            if self.at == before {
                return Err(not_xml(format!(
                    "<{raw} has attributes without space between them"
                )));
            }
            let name = self.name()?;
            self.skip_whitespace();
            if !self.rest().starts_with('=') {
                return Err(not_xml(format!("the attribute {name} has no value")));
            }
            self.at += 1;
            self.skip_whitespace();
            let quote = self.rest().chars().next().filter(|c| *c == '"' || *c == '\'');
            let Some(quote) = quote else {
                return Err(not_xml(format!("the attribute {name}'s value is not quoted")));
            };
            self.at += 1;
            let rest = self.rest();
            let end = rest
                .find(quote)
                .ok_or_else(|| not_xml(format!("the attribute {name}'s value does not end")))?;
            let raw_value = &rest[..end];
            if raw_value.contains('<') {
                return Err(not_xml(format!("the attribute {name}'s value holds <")));
            }
            self.at += end + 1;
            if attributes.iter().any(|(known, _)| *known == name) {
                return Err(not_xml(format!("the attribute {name} is given twice")));
            }
            if attributes.len() == MAX_ATTRIBUTES {
                return Err(not_xml(format!(
                    "<{raw} has more than {MAX_ATTRIBUTES} attributes"
                )));
            }
            attributes.push((name, decode(raw_value)?));
        };

        // Namespace declarations first: they apply to the element's own name and attributes.
        let mut added = 0;
        for (name, value) in &attributes {
            let prefix = match name.as_str() {
                "xmlns" => None,
                _ => match name.strip_prefix("xmlns:") {
                    Some(prefix) => Some(prefix.to_owned()),
                    None => continue,
                },
            };
            if matches!(prefix.as_deref(), Some("xml" | "xmlns")) || value == XML {
                return Err(not_xml("the xml and xmlns prefixes cannot be bound"));
            }
            if prefix.is_some() && value.is_empty() {
                return Err(not_xml(format!("{name} binds a prefix to no namespace")));
            }
            self.bindings.push((prefix, value.clone()));
            added += 1;
        }
        let fail = |reader: &mut Self, error: OutboundRefusal| {
            reader.bindings.truncate(reader.bindings.len() - added);
            Err(error)
        };
        let (namespace, local) = match self.resolve(&raw, true) {
            Ok(resolved) => resolved,
            Err(error) => return fail(self, error),
        };
        let mut element = Element {
            namespace,
            local,
            ..Element::default()
        };
        let mut resolved_attributes = HashSet::new();
        for (name, value) in &attributes {
            if name == "xmlns" || name.starts_with("xmlns:") {
                continue;
            }
            let (namespace, local) = match self.resolve(name, false) {
                Ok(resolved) => resolved,
                Err(error) => return fail(self, error),
            };
            if !resolved_attributes.insert((namespace.clone(), local.clone())) {
                return fail(self, not_xml(format!("the attribute {local} is given twice")));
            }
            if namespace.as_deref() == Some(XSI) {
                match local.as_str() {
                    "type" => match self.resolve(value.trim(), true) {
                        Ok(resolved) => element.schema_type = Some(resolved),
                        Err(error) => return fail(self, error),
                    },
                    "nil" => element.nil = matches!(value.trim(), "true" | "1"),
                    _ => {}
                }
            }
        }
        Ok((element, raw, added, empty))
    }

    /// A qualified name's namespace and local name; an unprefixed element is in the default
    /// namespace, an unprefixed attribute in none. An unbound prefix is not XML.
    fn resolve(
        &self,
        name: &str,
        default_applies: bool,
    ) -> Result<(Option<String>, String), OutboundRefusal> {
        let (prefix, local) = match name.split_once(':') {
            Some((prefix, local)) => (Some(prefix), local),
            None => (None, name),
        };
        if local.is_empty() {
            return Err(not_xml(format!("{name:?} is not a name")));
        }
        if prefix.is_none() && !default_applies {
            return Ok((None, local.to_owned()));
        }
        let bound = self
            .bindings
            .iter()
            .rev()
            .find(|(bound, _)| bound.as_deref() == prefix)
            .map(|(_, namespace)| namespace.clone());
        match (prefix, bound) {
            (_, Some(namespace)) if !namespace.is_empty() => Ok((Some(namespace), local.to_owned())),
            (None, _) => Ok((None, local.to_owned())),
            (Some(prefix), _) => Err(not_xml(format!(
                "the prefix {prefix} is not bound to a namespace"
            ))),
        }
    }
}

/// Character data with its references replaced: XML's five named entities and `&#N;`/`&#xH;`
/// of a character XML allows. Any other entity is refused (none can be declared).
fn decode(raw: &str) -> Result<String, OutboundRefusal> {
    if !raw.contains('&') {
        return check_chars(raw).map(|()| raw.to_owned());
    }
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(at) = rest.find('&') {
        check_chars(&rest[..at])?;
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let end = after
            .find(';')
            .filter(|end| *end <= 10)
            .ok_or_else(|| not_xml("an & that starts no reference"))?;
        let reference = &after[..end];
        let character = match reference {
            "lt" => '<',
            "gt" => '>',
            "amp" => '&',
            "quot" => '"',
            "apos" => '\'',
            _ => {
                let code = if let Some(hex) = reference.strip_prefix("#x") {
                    u32::from_str_radix(hex, 16).ok()
                } else if let Some(decimal) = reference.strip_prefix('#') {
                    decimal.parse().ok()
                } else {
                    return Err(not_xml(format!("the entity &{reference}; is not XML's own")));
                };
                code.and_then(char::from_u32)
                    .filter(|c| allowed(*c))
                    .ok_or_else(|| not_xml(format!("&{reference}; is not a character XML allows")))?
            }
        };
        out.push(character);
        rest = &after[end + 1..];
    }
    check_chars(rest)?;
    out.push_str(rest);
    Ok(out)
}

/// XML 1.0's characters: tab, line feed, carriage return, and everything from the space on but
/// U+FFFE and U+FFFF (Rust's `char` has no surrogates).
fn allowed(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r') || (c >= ' ' && c != '\u{fffe}' && c != '\u{ffff}')
}

fn check_chars(text: &str) -> Result<(), OutboundRefusal> {
    match text.chars().find(|c| !allowed(*c)) {
        Some(c) => Err(not_xml(format!("it holds the character U+{:04X}", u32::from(c)))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORG: &str = "00D5g000004Xyz1EAC";

    fn org() -> OrganizationId {
        OrganizationId::parse(ORG).unwrap_or_else(|| panic!())
    }

    /// An Outbound Message as Salesforce sends one (the envelope's shape from the outbound
    /// messaging WSDL; the ids and values made up).
    fn envelope(organization: &str, notifications: &str) -> String {
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
 <soapenv:Body>
  <notifications xmlns="http://soap.sforce.com/2005/09/outbound">
   <OrganizationId>{organization}</OrganizationId>
   <ActionId>04k5g000000abcdAAA</ActionId>
   <SessionId xsi:nil="true"/>
   <EnterpriseUrl>https://acme.my.salesforce.com/services/Soap/c/66.0/00D5g000004Xyz1</EnterpriseUrl>
   <PartnerUrl>https://acme.my.salesforce.com/services/Soap/u/66.0/00D5g000004Xyz1</PartnerUrl>
{notifications}
  </notifications>
 </soapenv:Body>
</soapenv:Envelope>"#
        )
    }

    fn contact(notification: &str, fields: &str) -> String {
        format!(
            r#"   <Notification>
    <Id>{notification}</Id>
    <sObject xsi:type="sf:Contact" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">
     {fields}
    </sObject>
   </Notification>"#
        )
    }

    fn parsed(body: &str) -> Result<OutboundMessage, OutboundRefusal> {
        OutboundMessage::parse(body.as_bytes(), &org())
    }

    fn id(text: &str) -> SalesforceId {
        SalesforceId::parse(text).unwrap_or_else(|| panic!("{text}"))
    }

    #[test]
    fn a_contacts_and_a_cases_changes_are_read_with_their_fields() {
        let notifications = [
            contact(
                "04l5g000000aaaaAAA",
                "<sf:Id>0035g00000abcdeAAA</sf:Id><sf:Email>o&apos;brien@acme.example</sf:Email>\
                 <sf:Phone xsi:nil=\"true\"/><sf:SystemModstamp>2026-11-27T10:00:00.000Z</sf:SystemModstamp>",
            ),
            r#"   <Notification><Id>04l5g000000aaabAAA</Id>
    <sObject xsi:type="sf:Case" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">
     <sf:Id>5005g00000abcdeAAA</sf:Id><sf:IsClosed>true</sf:IsClosed><sf:Status>Closed</sf:Status>
    </sObject></Notification>"#
                .to_owned(),
        ]
        .join("\n");
        let message = parsed(&envelope(ORG, &notifications)).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(message.organization_id, org());
        assert_eq!(message.action_id, id("04k5g000000abcd"));
        assert!(!message.carried_session);
        let [first, second] = message.notifications.as_slice() else {
            panic!("{message:?}");
        };
        assert_eq!(first.id, id("04l5g000000aaaaAAA"));
        assert_eq!(first.object, NotifiedObject::Contact);
        assert_eq!(
            first.fields.get("Email"),
            Some(&Some("o'brien@acme.example".to_owned()))
        );
        assert_eq!(first.fields.get("Phone"), Some(&None), "a nil field");
        assert_eq!(
            first.modified_at(),
            Timestamp::parse_rfc3339("2026-11-27T10:00:00.000Z")
        );
        assert!(
            matches!(first.change(), Change::ContactChanged { contact, .. } if contact == id("0035g00000abcde"))
        );
        assert_eq!(
            second.change(),
            Change::CaseChanged {
                case: id("5005g00000abcde"),
                status: Some("Closed".to_owned()),
                closed: Some(true),
            }
        );
    }

    #[test]
    fn a_merged_a_deleted_and_an_emptied_record_are_told_apart() {
        let notifications = [
            contact(
                "04l5g000000aaaaAAA",
                "<sf:Id>0035g00000abcdeAAA</sf:Id><sf:IsDeleted>true</sf:IsDeleted>\
                 <sf:MasterRecordId>0035g00000fghijAAA</sf:MasterRecordId>",
            ),
            contact(
                "04l5g000000aaabAAA",
                "<sf:Id>0035g00000abcdeAAA</sf:Id><sf:IsDeleted>true</sf:IsDeleted><sf:MasterRecordId xsi:nil=\"true\"/>",
            ),
            contact("04l5g000000aaacAAA", ""),
        ]
        .join("\n");
        let message = parsed(&envelope(ORG, &notifications)).unwrap_or_else(|error| panic!("{error}"));
        let changes: Vec<Change> = message.notifications.iter().map(Notification::change).collect();
        assert_eq!(
            changes,
            [
                Change::ContactMerged {
                    contact: id("0035g00000abcde"),
                    into: id("0035g00000fghij"),
                },
                Change::ContactDeleted {
                    contact: id("0035g00000abcde"),
                },
                Change::Emptied,
            ]
        );
    }

    #[test]
    fn each_notification_is_applied_once_and_never_over_a_newer_state() {
        let notifications = [
            contact("04l5g000000aaaaAAA", "<sf:Id>0035g00000abcdeAAA</sf:Id>"),
            contact("04l5g000000aaaaAAA", "<sf:Id>0035g00000abcdeAAA</sf:Id>"),
            contact("04l5g000000aaabAAA", "<sf:Id>0035g00000fghijAAA</sf:Id>"),
            contact("04l5g000000aaacAAA", "<sf:Id>0035g00000klmnoAAA</sf:Id>"),
        ]
        .join("\n");
        let message = parsed(&envelope(ORG, &notifications)).unwrap_or_else(|error| panic!("{error}"));
        let seen = id("04l5g000000aaab");
        let fresh: Vec<&SalesforceId> = message
            .unseen(|notification| *notification == seen)
            .into_iter()
            .map(|notification| &notification.id)
            .collect();
        assert_eq!(fresh, [&id("04l5g000000aaaa"), &id("04l5g000000aaac")]);

        let older = parsed(&envelope(
            ORG,
            &contact(
                "04l5g000000aaaaAAA",
                "<sf:Id>0035g00000abcdeAAA</sf:Id><sf:LastModifiedDate>2026-11-27T09:00:00.000Z</sf:LastModifiedDate>",
            ),
        ))
        .unwrap_or_else(|error| panic!("{error}"));
        let applied = Timestamp::parse_rfc3339("2026-11-27T10:00:00Z");
        assert!(older.notifications[0].is_stale(applied), "delivered out of order");
        assert!(!older.notifications[0].is_stale(None));
    }

    #[test]
    fn a_message_from_another_org_is_refused_and_the_org_id_is_compared_as_salesforce_does() {
        let notification = contact("04l5g000000aaaaAAA", "<sf:Id>0035g00000abcdeAAA</sf:Id>");
        assert!(
            parsed(&envelope("00D5g000004XYZ1EAC", &notification)).is_ok(),
            "the long form's case does not matter"
        );
        assert!(
            parsed(&envelope("00D5g000004Xyz1", &notification)).is_ok(),
            "nor does the form"
        );
        for other in ["00D5g000004Xyz2EAC", "00D5g000004XYZ1EAE"] {
            assert_eq!(
                parsed(&envelope(other, &notification)).map(|_| ()),
                Err(OutboundRefusal::WrongOrganization),
                "{other}"
            );
        }
    }

    #[test]
    fn at_most_100_notifications_are_taken() {
        let hundred: Vec<String> = (0..100)
            .map(|n| contact(&format!("04l5g00000{n:05}"), "<sf:Id>0035g00000abcdeAAA</sf:Id>"))
            .collect();
        let taken = parsed(&envelope(ORG, &hundred.join("\n"))).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(taken.notifications.len(), 100);
        let mut more = hundred;
        more.push(contact("04l5g00000zzzzz", "<sf:Id>0035g00000abcdeAAA</sf:Id>"));
        assert_eq!(
            parsed(&envelope(ORG, &more.join("\n"))).map(|_| ()),
            Err(OutboundRefusal::TooManyNotifications(101))
        );
    }

    #[test]
    fn entity_declarations_are_refused_before_anything_is_expanded() {
        let billion_laughs = format!(
            "<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 \"&lol;&lol;&lol;\">]>\n{}",
            envelope(
                ORG,
                &contact(
                    "04l5g000000aaaaAAA",
                    "<sf:Id>0035g00000abcdeAAA</sf:Id><sf:Email>&lol2;</sf:Email>"
                )
            )
            .replacen("<?xml version=\"1.0\" encoding=\"UTF-8\"?>", "", 1)
        );
        assert_eq!(
            parsed(&billion_laughs).map(|_| ()),
            Err(OutboundRefusal::Declaration)
        );
        let external = "<!DOCTYPE x SYSTEM \"file:///etc/passwd\"><x/>";
        assert_eq!(parsed(external).map(|_| ()), Err(OutboundRefusal::Declaration));
    }

    #[test]
    fn hostile_and_malformed_bodies_are_refused_with_a_reason() {
        let good = |fields: &str| envelope(ORG, &contact("04l5g000000aaaaAAA", fields));
        let deep = format!(
            "<soapenv:Envelope xmlns:soapenv=\"{SOAP_ENVELOPE}\">{}{}</soapenv:Envelope>",
            "<a>".repeat(20),
            "</a>".repeat(20)
        );
        let cases: Vec<(String, u16, &str)> = vec![
            (
                good("<sf:Id>0035g00000abcdeAAA</sf:Id>"),
                0,
                "the good one, for reference",
            ),
            ("x".repeat(BODY_LIMIT + 1), 413, "oversized"),
            ("".to_owned(), 400, "empty"),
            ("<notifications/>".to_owned(), 400, "no envelope"),
            (deep, 400, "deep nesting"),
            (
                good("<sf:Id>0035g00000abcdeAAA</sf:Id>")
                    .replace("soap.sforce.com/2005/09/outbound", "evil.example/outbound"),
                400,
                "the wrong namespace",
            ),
            (
                good("<sf:Id>0035g00000abcdeAAA</sf:Id>").replace(
                    "http://schemas.xmlsoap.org/soap/envelope/",
                    "http://www.w3.org/2003/05/soap-envelope",
                ),
                400,
                "SOAP 1.2",
            ),
            (
                good("<sf:Id>0035g00000abcdeAAA</sf:Id>").replace(
                    "urn:sobject.enterprise.soap.sforce.com",
                    "urn:sobject.partner.soap.sforce.com",
                ),
                400,
                "another sObject namespace",
            ),
            (
                good("<sf:Id>0035g00000abcdeAAA</sf:Id>").replace("sf:Contact", "sf:Account"),
                422,
                "an object not followed",
            ),
            (
                good("<sf:Id>0035g00000abcdeAAA</sf:Id>").replace(" xsi:type=\"sf:Contact\"", ""),
                400,
                "no type",
            ),
            (
                good("<sf:Id>0035g00000abcdeAAA</sf:Id>")
                    .replace("<OrganizationId>00D5g000004Xyz1EAC</OrganizationId>", ""),
                400,
                "no org id",
            ),
            (
                good("<sf:Id>0035g00000abcdeAAA</sf:Id>")
                    .replace("<ActionId>04k5g000000abcdAAA</ActionId>", ""),
                400,
                "no action id",
            ),
            (envelope(ORG, ""), 400, "no notification"),
            (
                good("<sf:Id>0035g00000abcdeAAA</sf:Id>").replace("<Id>04l5g000000aaaaAAA</Id>", ""),
                400,
                "a notification without its id",
            ),
            (
                good("<sf:Id>0035g00000abcdeAAA</sf:Id>")
                    .replace("<Id>04l5g000000aaaaAAA</Id>", "<Id>04l' OR 1=1</Id>"),
                400,
                "a notification id that is not one",
            ),
            (
                good("<sf:Id>0035g00000abcdeAAA</sf:Id><sf:Id>0035g00000fghijAAA</sf:Id>"),
                400,
                "a field twice",
            ),
            (
                good("<sf:Id>0035g00000abcdeAAA</sf:Id><sf:Email><b>x</b></sf:Email>"),
                400,
                "a field holding elements",
            ),
            (
                good("<sf:Id>0035g00000abcdeAAA</sf:Id><sf:Email>&ext;</sf:Email>"),
                400,
                "an undeclared entity",
            ),
            (
                good("<sf:Id>0035g00000abcdeAAA</sf:Id><sf:Email>&#0;</sf:Email>"),
                400,
                "a NUL by reference",
            ),
            (
                good("<sf:Id>0035g00000abcdeAAA</sf:Id><sf:Email>a & b</sf:Email>"),
                400,
                "a bare ampersand",
            ),
            (
                good("<sf:Id>0035g00000abcdeAAA</sf:Id><sf:Email>x</sf:Phone>"),
                400,
                "mismatched tags",
            ),
            (
                good("<sf:Id>0035g00000abcdeAAA</sf:Id><sf:Email>x"),
                400,
                "an unclosed element",
            ),
            (
                good("<sf:Id>0035g00000abcdeAAA</sf:Id><x:Email>x</x:Email>"),
                400,
                "an unbound prefix",
            ),
            (
                good("<sf:Id>0035g00000abcdeAAA</sf:Id>").replace("<sf:Id>", "<?php evil() ?><sf:Id>"),
                400,
                "a processing instruction",
            ),
            (
                good("<sf:Id>0035g00000abcdeAAA</sf:Id>") + "<more/>",
                400,
                "a second root",
            ),
            (
                good("<sf:Id>0035g00000abcdeAAA</sf:Id>")
                    .replace("encoding=\"UTF-8\"", "encoding=\"UTF-16\""),
                400,
                "another encoding",
            ),
            (
                good("<sf:Id>0035g00000abcdeAAA</sf:Id>").replace("<sf:Id>", "<sf:Id a=\"1\" a=\"2\">"),
                400,
                "an attribute twice",
            ),
            (
                good("<sf:Id>0035g00000abcdeAAA</sf:Id>")
                    .replace("<soapenv:Body>", "<soapenv:Body><extra xmlns=\"urn:x\"/>"),
                400,
                "something beside the notifications",
            ),
            (
                good("<sf:Id>0035g00000abcdeAAA</sf:Id>").replace("<Notification>", "<Notification>stray"),
                400,
                "text beside a notification's elements",
            ),
        ];
        for (body, status, description) in cases {
            let result = parsed(&body);
            match status {
                0 => assert!(result.is_ok(), "{description}: {result:?}"),
                status => assert_eq!(
                    result.as_ref().map(|_| ()).map_err(OutboundRefusal::status),
                    Err(status),
                    "{description}: {result:?}"
                ),
            }
        }
    }

    #[test]
    fn a_body_that_is_not_utf8_is_refused() {
        assert_eq!(
            OutboundMessage::parse(&[0x3c, 0xff, 0xfe, 0x3e], &org())
                .map(|_| ())
                .map_err(|refusal| refusal.status()),
            Err(400)
        );
    }

    #[test]
    fn too_many_elements_are_refused_before_they_are_all_kept() {
        let fields = "<sf:X/>".repeat(MAX_ELEMENTS);
        let body = envelope(ORG, &contact("04l5g000000aaaaAAA", &fields));
        assert!(body.len() < BODY_LIMIT);
        assert_eq!(parsed(&body).map(|_| ()), Err(OutboundRefusal::TooManyElements));
    }

    #[test]
    fn prefixes_cdata_comments_and_references_are_read_as_xml_means_them() {
        let body = format!(
            r#"<?xml version='1.0' encoding='utf-8'?><!-- sent by a workflow -->
<e:Envelope xmlns:e="{SOAP_ENVELOPE}"><e:Header/><e:Body>
<o:notifications xmlns:o="{OUTBOUND}" xmlns:i="{XSI}"><o:OrganizationId>{ORG}</o:OrganizationId><o:ActionId>04k5g000000abcd</o:ActionId>
<o:SessionId>00D!secret-session</o:SessionId>
<o:Notification><o:Id>04l5g000000aaaaAAA</o:Id><o:sObject i:type="s:Case" xmlns:s="{SOBJECT}">
<s:Id>5005g00000abcdeAAA</s:Id><s:Status><![CDATA[Waiting <on> customer]]></s:Status><s:Subject>caf&#233; &#x2603;</s:Subject>
</o:sObject></o:Notification></o:notifications></e:Body></e:Envelope>"#
        );
        let message = parsed(&body).unwrap_or_else(|error| panic!("{error}"));
        assert!(message.carried_session, "said, and not kept");
        assert!(!format!("{message:?}").contains("secret-session"));
        let case = &message.notifications[0];
        assert_eq!(
            case.fields.get("Status"),
            Some(&Some("Waiting <on> customer".to_owned()))
        );
        assert_eq!(case.fields.get("Subject"), Some(&Some("café ☃".to_owned())));
    }

    #[test]
    fn the_answer_acknowledges_and_a_refusal_is_a_soap_fault_with_its_reason_escaped() {
        assert!(ACK.contains(
            r#"<notificationsResponse xmlns="http://soap.sforce.com/2005/09/outbound"><Ack>true</Ack>"#
        ));
        let ack_back = Reader::new(ACK)
            .document()
            .unwrap_or_else(|error| panic!("{error}"));
        assert!(
            ack_back.is(SOAP_ENVELOPE, "Envelope"),
            "the answer is well-formed"
        );
        let refusal = OutboundRefusal::UnsupportedObject("<Account & co>".to_owned());
        let answer = fault(&refusal);
        assert!(
            answer.contains("<faultcode>soapenv:Client</faultcode>"),
            "{answer}"
        );
        assert!(answer.contains("&lt;Account &amp; co&gt;"), "{answer}");
        assert!(Reader::new(&answer).document().is_ok(), "{answer}");
    }

    #[test]
    fn the_address_secret_is_compared_whole_and_never_empty() {
        let token = "a".repeat(40);
        assert!(token_matches(&token, &token));
        assert!(!token_matches(&token, &"a".repeat(39)));
        assert!(!token_matches(&token, ""));
        assert!(!token_matches("", ""));
    }
}
