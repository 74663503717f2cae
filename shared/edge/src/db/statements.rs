//! Every fixed SQL statement of the table modules, prepared natively against the real migrations
//! (D1 is SQLite): a statement that names a table, column or index the schema does not have, or
//! that SQLite cannot parse, fails here instead of in a request. Statements composed from
//! fragments (`Sql`) are built below as their callers build them, from the table modules' own
//! fragment functions, and checked the same way; statements whose text is put together with
//! `format!` are checked where their fixed head is (the rest is left to the end-to-end tests).
//!
//! The tenant rule, checked the same way: SQLite's authorizer reports every table and column a
//! statement touches as it is prepared, and a statement that reads or changes a business's table
//! (one with a `business_id` column) without reading that column must be one of the few listed in
//! `UNSCOPED`, each with its reason (the sweeps, and rows reached by an id read with its business).
//! And the door's rule: every statement handed to `Db::scoped`, which binds the business as `?1`,
//! uses `?1`.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

/// The string literals of a Rust source, before its tests, with their escapes resolved, each with
/// the name of the function or constant it is written in.
fn string_literals(source: &str) -> Vec<(String, String)> {
    let source = source.split("#[cfg(test)]").next().unwrap_or(source);
    let chars: Vec<char> = source.chars().collect();
    let mut literals = Vec::new();
    let mut at = 0;
    while at < chars.len() {
        match chars[at] {
            '/' if chars.get(at + 1) == Some(&'/') => {
                while at < chars.len() && chars[at] != '\n' {
                    at += 1;
                }
            }
            // A char literal holding a quote is not the start of a string.
            '\'' if chars.get(at + 1) == Some(&'"') && chars.get(at + 2) == Some(&'\'') => at += 3,
            '\'' if chars.get(at + 1) == Some(&'\\') && chars.get(at + 3) == Some(&'\'') => at += 4,
            'r' if matches!(chars.get(at + 1), Some('"' | '#'))
                && (at == 0 || !chars[at - 1].is_alphanumeric()) =>
            {
                let mut hashes = 0;
                let mut start = at + 1;
                while chars.get(start) == Some(&'#') {
                    hashes += 1;
                    start += 1;
                }
                if chars.get(start) != Some(&'"') {
                    at += 1;
                    continue;
                }
                let closing: String = std::iter::once('"')
                    .chain(std::iter::repeat_n('#', hashes))
                    .collect();
                let rest: String = chars[start + 1..].iter().collect();
                let end = rest.find(&closing).unwrap_or(rest.len());
                literals.push((enclosing_item(&chars[..at]), rest[..end].to_owned()));
                at = start + 1 + rest[..end].chars().count() + closing.chars().count();
            }
            '"' => {
                let function = enclosing_item(&chars[..at]);
                let mut text = String::new();
                at += 1;
                while at < chars.len() && chars[at] != '"' {
                    if chars[at] == '\\' {
                        at += 1;
                        match chars.get(at) {
                            Some('n') => text.push('\n'),
                            Some('t') => text.push('\t'),
                            // A line continuation: the newline and the next line's indent go.
                            Some('\n') => {
                                while chars.get(at + 1).is_some_and(|c| c.is_whitespace()) {
                                    at += 1;
                                }
                            }
                            Some(other) => text.push(*other),
                            None => {}
                        }
                    } else {
                        text.push(chars[at]);
                    }
                    at += 1;
                }
                literals.push((function, text));
                at += 1;
            }
            _ => at += 1,
        }
    }
    literals
}

/// The name of the last function or constant begun in `before` (empty if none is).
fn enclosing_item(before: &[char]) -> String {
    let text: String = before.iter().collect();
    let begun = |keyword: &str| {
        text.rmatch_indices(keyword)
            .find(|(at, _)| *at == 0 || text[..*at].ends_with(char::is_whitespace))
            .map(|(at, _)| at + keyword.len())
    };
    let Some(at) = begun("fn ").max(begun("const ")) else {
        return String::new();
    };
    text[at..]
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

/// Whether a literal is a whole statement of fixed text.
fn is_fixed_statement(text: &str) -> bool {
    let first = text
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_ascii_uppercase();
    matches!(
        first.as_str(),
        "SELECT" | "INSERT" | "UPDATE" | "DELETE" | "WITH" | "REPLACE"
    ) && !text.contains('{')
}

/// The files of `dir` whose names end in `.extension`, in name order.
fn files_in(dir: &Path, extension: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|error| panic!("{}: {error}", dir.display()))
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|found| found == extension))
        .collect();
    files.sort();
    files
}

/// The table modules under src/db/, in name order, each with its name and its source before its
/// tests. A module that is a folder (`customers/`) is its files' sources one after another: its
/// statements keep the table's name, and a constant one file names is found in another.
fn table_modules() -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/db");
    let mut entries: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|error| panic!("{}: {error}", dir.display()))
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .collect();
    entries.sort();
    entries
        .into_iter()
        .filter_map(|path| {
            let files = if path.is_dir() {
                files_in(&path, "rs")
            } else if path.extension().is_some_and(|found| found == "rs") {
                vec![path.clone()]
            } else {
                return None;
            };
            let module = path.file_stem()?.to_string_lossy().into_owned();
            let source: Vec<String> = files
                .iter()
                .map(|file| {
                    let source = fs::read_to_string(file).unwrap_or_else(|error| panic!("{error}"));
                    source.split("#[cfg(test)]").next().unwrap_or_default().to_owned()
                })
                .collect();
            Some((module, source.join("\n")))
        })
        .collect()
}

/// A statement of fixed text, with the module and function it is written in.
struct Statement {
    module: String,
    function: String,
    sql: String,
}

/// Every fixed statement under src/db/, in module order.
fn fixed_statements() -> Vec<Statement> {
    let mut statements = Vec::new();
    for (module, source) in table_modules() {
        for (function, sql) in string_literals(&source) {
            if is_fixed_statement(&sql) {
                statements.push(Statement {
                    module: module.clone(),
                    function,
                    sql,
                });
            }
        }
    }
    statements
}

/// A database migrated as D1 is, with the native runtime's own migrations.
pub(crate) fn migrated() -> rusqlite::Connection {
    crate::runtime::native::migrated_connection()
}

#[test]
fn every_fixed_statement_prepares_against_the_migrated_schema() {
    let db = migrated();
    let mut checked = 0;
    let mut failures = Vec::new();
    for statement in fixed_statements() {
        match db.prepare(&statement.sql) {
            Ok(_) => checked += 1,
            // The head of a statement its module completes with `format!`: a fragment.
            Err(error) if error.to_string() == "incomplete input" => {}
            Err(error) => failures.push(format!(
                "{}::{}: {error}\n  {}",
                statement.module,
                statement.function,
                statement.sql.trim()
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "statements SQLite refuses:\n{}",
        failures.join("\n")
    );
    // Most statements are fixed text; a reader that stopped finding them would pass on nothing.
    assert!(
        checked >= 140,
        "only {checked} fixed statements found under src/db/"
    );
}

#[test]
fn the_reader_finds_statements_in_each_kind_of_literal() {
    let source = r####"
        let a = "SELECT id FROM customers WHERE business_id = ?1";
        let b = r#"UPDATE messages SET status = "sent" WHERE id = ?1"#;
        let c = "DELETE FROM sso_tokens \
                 WHERE expires_at < ?1";
        let quote = '"';
        let d = format!("SELECT {columns} FROM customers");
        // "SELECT nothing from a comment"
        #[cfg(test)]
        let e = "SELECT 1";
    "####;
    let statements: Vec<String> = string_literals(source)
        .into_iter()
        .map(|(_, text)| text)
        .filter(|text| is_fixed_statement(text))
        .collect();
    assert_eq!(
        statements,
        [
            "SELECT id FROM customers WHERE business_id = ?1",
            "UPDATE messages SET status = \"sent\" WHERE id = ?1",
            "DELETE FROM sso_tokens WHERE expires_at < ?1",
        ]
    );
}

#[test]
fn a_statement_the_schema_does_not_have_is_refused() {
    let db = migrated();
    assert!(
        db.prepare("SELECT id FROM customers WHERE business_id = ?1")
            .is_ok()
    );
    assert!(
        db.prepare("SELECT id FROM customers WHERE tenant_id = ?1")
            .is_err()
    );
    assert!(
        db.prepare("SELECT id FROM customer WHERE business_id = ?1")
            .is_err()
    );
}

/// The SQL each call of `Db::scoped` in a table module is given, with the module, where the
/// call's text can be read: a literal, a `format!` (holes left in) or a constant of the module.
/// The count of calls whose SQL is built elsewhere (a variable) comes second.
fn scoped_statements() -> (Vec<(String, String)>, usize) {
    let (mut found, mut built) = (Vec::new(), 0);
    for (module, source) in table_modules() {
        let source = source.as_str();
        let constants = string_literals(source);
        for (at, _) in source.match_indices(".scoped(") {
            let call = &source[at + ".scoped(".len()..];
            // `Sql::scoped(db, tenant)`: a composed statement, whose door checks `:business`.
            let Some((first, rest)) = call.split_once(',') else {
                continue;
            };
            if first.trim() == "db" {
                continue;
            }
            let rest = rest.trim_start();
            let sql = if rest.starts_with('"') || rest.starts_with("r\"") || rest.starts_with("format!(") {
                string_literals(rest).into_iter().next().map(|(_, sql)| sql)
            } else {
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_uppercase() || *c == '_')
                    .collect();
                constants
                    .iter()
                    .find(|(item, _)| !name.is_empty() && *item == name)
                    .map(|(_, sql)| sql.clone())
            };
            match sql {
                // A hole may hold the `?1` (`WHERE {of_message}`): what fills it is not read here.
                Some(sql) if sql.contains('{') && !uses_first_parameter(&sql) => built += 1,
                Some(sql) => found.push((module.clone(), sql)),
                None => built += 1,
            }
        }
    }
    (found, built)
}

/// Whether `sql` uses the parameter `?1` (and not only `?10` and on).
fn uses_first_parameter(sql: &str) -> bool {
    sql.match_indices("?1")
        .any(|(at, _)| !sql[at + 2..].starts_with(|c: char| c.is_ascii_digit()))
}

/// `Db::scoped` binds the business as `?1` and the caller's values from `?2`: a statement handed
/// to it that never uses `?1` would read every value one place off, and D1 would not notice
/// (a statement's parameter count is its highest number).
#[test]
fn every_statement_of_one_business_uses_the_business_it_is_bound() {
    let (statements, built) = scoped_statements();
    let unbound: Vec<String> = statements
        .iter()
        .filter(|(_, sql)| !uses_first_parameter(sql))
        .map(|(module, sql)| {
            format!(
                "{module}: {}",
                sql.split_whitespace().collect::<Vec<_>>().join(" ")
            )
        })
        .collect();
    assert!(
        unbound.is_empty(),
        "scoped statements that never use ?1:\n{}",
        unbound.join("\n")
    );
    assert!(
        statements.len() >= 120,
        "only {} scoped statements read ({built} built elsewhere)",
        statements.len()
    );
    assert!(uses_first_parameter("WHERE business_id = ?1 AND id = ?12"));
    assert!(!uses_first_parameter("WHERE id = ?12"));
}

/// The tables that hold a business's rows (those with a `business_id` column), and every foreign
/// key's two ends as (table, column) pairs.
struct Schema {
    tenant: BTreeSet<String>,
    key_ends: BTreeSet<(String, String)>,
    /// (parent, child) for every foreign key.
    children: BTreeSet<(String, String)>,
}

fn schema(db: &rusqlite::Connection) -> Schema {
    let rows = |sql: &str| -> Vec<Vec<String>> {
        let mut statement = db.prepare(sql).unwrap_or_else(|error| panic!("{error}"));
        let width = statement.column_count();
        statement
            .query_map([], |row| {
                (0..width)
                    .map(|at| row.get::<_, Option<String>>(at).map(Option::unwrap_or_default))
                    .collect()
            })
            .unwrap_or_else(|error| panic!("{error}"))
            .filter_map(Result::ok)
            .collect()
    };
    let tables: Vec<String> = rows("SELECT name FROM sqlite_master WHERE type = 'table'")
        .into_iter()
        .flatten()
        .collect();
    let mut schema = Schema {
        tenant: BTreeSet::new(),
        key_ends: BTreeSet::new(),
        children: BTreeSet::new(),
    };
    for table in tables {
        let columns = rows(&format!("SELECT name FROM pragma_table_info('{table}')"));
        if columns.iter().flatten().any(|column| column == "business_id") {
            schema.tenant.insert(table.clone());
        }
        for key in rows(&format!(
            "SELECT \"table\", \"from\", \"to\" FROM pragma_foreign_key_list('{table}')"
        )) {
            if let [parent, from, to] = key.as_slice() {
                schema.key_ends.insert((table.clone(), from.clone()));
                schema.key_ends.insert((parent.clone(), to.clone()));
                schema.children.insert((parent.clone(), table.clone()));
            }
        }
    }
    schema
}

/// What a statement does to one table, as SQLite's authorizer reports it while preparing it.
#[derive(Debug, PartialEq)]
enum Access {
    Read(String, String),
    Insert(String),
    Change(String),
}

fn accesses(db: &mut rusqlite::Connection, sql: &str) -> Vec<Access> {
    use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
    let seen: Arc<Mutex<Vec<Access>>> = Arc::default();
    let record = Arc::clone(&seen);
    db.authorizer(Some(move |context: AuthContext<'_>| {
        // What a trigger does is the trigger's, not the statement's.
        if context.accessor.is_none() {
            let access = match context.action {
                AuthAction::Read {
                    table_name,
                    column_name,
                } => Some(Access::Read(table_name.to_owned(), column_name.to_owned())),
                AuthAction::Insert { table_name } => Some(Access::Insert(table_name.to_owned())),
                AuthAction::Update { table_name, .. } | AuthAction::Delete { table_name } => {
                    Some(Access::Change(table_name.to_owned()))
                }
                _ => None,
            };
            record
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .extend(access);
        }
        Authorization::Allow
    }))
    .unwrap_or_else(|error| panic!("{error}"));
    let prepared = db.prepare(sql).is_ok();
    db.authorizer(None::<fn(AuthContext<'_>) -> Authorization>)
        .unwrap_or_else(|error| panic!("{error}"));
    let accesses = std::mem::take(&mut *seen.lock().unwrap_or_else(PoisonError::into_inner));
    if prepared { accesses } else { Vec::new() }
}

/// The business tables a statement reads or changes without reading their `business_id`. Left
/// out: reads of a foreign key's ends while a row is written (SQLite checking the key, not the
/// statement asking), a child table changed with its parent (the key's cascade), and the table an
/// INSERT writes, whose row names its business (the column is NOT NULL) and whose ON CONFLICT
/// clause can only meet a row holding the same unique key.
fn unscoped_tables(schema: &Schema, accesses: &[Access]) -> BTreeSet<String> {
    let writes = accesses.iter().any(|access| !matches!(access, Access::Read(..)));
    let (mut inserted, mut changed) = (BTreeSet::new(), BTreeSet::new());
    for access in accesses {
        match access {
            Access::Insert(table) => inserted.insert(table),
            Access::Change(table) => changed.insert(table),
            Access::Read(..) => false,
        };
    }
    let cascaded = |child: &String| {
        changed
            .iter()
            .any(|parent| schema.children.contains(&((*parent).clone(), child.clone())))
    };
    let mut touched = BTreeSet::new();
    let mut scoped = BTreeSet::new();
    for access in accesses {
        let table = match access {
            Access::Read(table, column) if column == "business_id" => {
                scoped.insert(table.clone());
                continue;
            }
            Access::Read(table, column)
                if writes && schema.key_ends.contains(&(table.clone(), column.clone())) =>
            {
                continue;
            }
            Access::Change(table) if cascaded(table) => continue,
            Access::Read(table, _) | Access::Insert(table) | Access::Change(table) => table,
        };
        if schema.tenant.contains(table) && !inserted.contains(table) {
            touched.insert(table.clone());
        }
    }
    touched.difference(&scoped).cloned().collect()
}

/// The statements that read or change business rows without naming the business, each on purpose.
/// A new one fails the test below until it is scoped or added here with its reason; an entry that
/// no statement needs any more fails it too.
const UNSCOPED: &[(&str, &str, &str)] = &[
    // Sweeps: the cron's housekeeping runs across every business by design. (Those that read no
    // other table pass the rule by the business_id their clause reads to leave moving businesses
    // alone, `directory::Moving`.)
    (
        "attachments",
        "mark_requeued",
        "the media sweep requeues stuck media of every business",
    ),
    (
        "crm_sync_jobs",
        "overdue_contacts",
        "the sweep finds overdue work of every business",
    ),
    // By a row's own id, after the row was read with its business.
    (
        "crm_requests",
        "record_grant",
        "the connector's budget row, by the id of a connector read with its business",
    ),
    // A child table reached through its parent's id, inside a statement scoped on the parent.
    (
        "knowledge_sources",
        "reschedule",
        "knowledge_links by the source id the statement scopes",
    ),
    // A statement's head: each of its three callers completes it with `WHERE s.business_id = ?1`.
    (
        "knowledge_sources",
        "SELECT",
        "a column list each caller completes with the business's WHERE",
    ),
];

#[test]
fn every_statement_on_a_business_table_names_the_business() {
    let mut db = migrated();
    let schema = schema(&db);
    let mut unscoped = Vec::new();
    let mut allowed = BTreeSet::new();
    for statement in fixed_statements() {
        let tables = unscoped_tables(&schema, &accesses(&mut db, &statement.sql));
        if tables.is_empty() {
            continue;
        }
        let place = (statement.module.as_str(), statement.function.as_str());
        if UNSCOPED
            .iter()
            .any(|(module, function, _)| (*module, *function) == place)
        {
            allowed.insert(place.0.to_owned() + "::" + place.1);
            continue;
        }
        unscoped.push(format!(
            "{}::{} ({}):\n  {}",
            statement.module,
            statement.function,
            tables.into_iter().collect::<Vec<_>>().join(", "),
            statement.sql.split_whitespace().collect::<Vec<_>>().join(" ")
        ));
    }
    assert!(
        unscoped.is_empty(),
        "statements on business tables that never read business_id (scope them, or add them to \
         UNSCOPED with the reason):\n{}",
        unscoped.join("\n")
    );
    let stale: Vec<String> = UNSCOPED
        .iter()
        .map(|(module, function, _)| format!("{module}::{function}"))
        .filter(|place| !allowed.contains(place))
        .collect();
    assert!(stale.is_empty(), "UNSCOPED entries no statement needs: {stale:?}");
    assert!(
        schema.tenant.len() >= 20,
        "only {} business tables found",
        schema.tenant.len()
    );
}

#[test]
fn the_tenant_rule_tells_scoped_from_unscoped() {
    let mut db = migrated();
    let schema = schema(&db);
    let mut unscoped = |sql: &str| -> Vec<String> {
        unscoped_tables(&schema, &accesses(&mut db, sql))
            .into_iter()
            .collect()
    };
    assert_eq!(
        unscoped("SELECT name FROM customers WHERE id = ?1"),
        ["customers"]
    );
    assert!(unscoped("SELECT name FROM customers WHERE business_id = ?1 AND id = ?2").is_empty());
    assert_eq!(
        unscoped("UPDATE customers SET name = ?2 WHERE id = ?1"),
        ["customers"]
    );
    assert_eq!(unscoped("DELETE FROM customers WHERE id = ?1"), ["customers"]);
    // A join scoped on one side only is unscoped on the other.
    assert_eq!(
        unscoped(
            "SELECT m.id FROM messages m JOIN customers c ON c.id = m.customer_id \
             WHERE m.business_id = ?1"
        ),
        ["customers"]
    );
    // An insert names its business; the parent rows its foreign keys check are not asked for.
    assert!(
        unscoped(
            "INSERT INTO attachments (id, business_id, message_id, filename, mime_type, size, \
             storage_key, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
        )
        .is_empty()
    );
    // Tables with no business column are not the rule's.
    assert!(unscoped("SELECT id FROM businesses WHERE id = ?1").is_empty());
}

/// The statements composed from fragments, built as their callers build them (each fragment
/// from its table module, every kind of event and guard of the event log), numbered as their
/// door numbers them: each must bind every name it uses, prepare against the migrated schema,
/// and, when it is one business's, hold to the tenant rule. The sweeps are unscoped by design.
#[test]
fn every_composed_statement_prepares_and_names_the_business() {
    use super::{Sql, abort_unless, attachments, channel_accounts, conversations, crm_contacts};
    use super::{customer_identities, customers, messages, webhook_deliveries, webhook_events};
    use domain::channel::{Channel, MessageStatus};
    use domain::ids::{ConversationId, CustomerId, EventId, MessageId};
    use domain::message::ConversationStatus;
    use domain::time::Timestamp;
    use domain::webhooks::EventType;
    use webhook_events::{Guard, NewEvent};

    let (message, conversation, customer) = (
        MessageId::generate([1; 16]),
        ConversationId::generate([2; 16]),
        CustomerId::generate([3; 16]),
    );
    let now = Timestamp::from_micros(1_750_000_000_000_000);
    let stamp = now.to_rfc3339();
    let event = |kind, subject: &str| NewEvent::new(EventId::generate([4; 16]), kind, subject);
    let of_message = |column| messages::outbound_column(&message, column);
    let record = |events: &[NewEvent], guard| {
        webhook_events::record_sql(Some("https://edge.example"), now, events, guard)
            .unwrap_or_else(|error| panic!("{error:?}"))
    };
    let scoped: Vec<(&str, Sql)> = vec![
        (
            "customers::with_id_of",
            customers::with_id_of(of_message("customer_id")),
        ),
        (
            "channel_accounts::for_sending_on",
            channel_accounts::for_sending_on(of_message("channel")),
        ),
        (
            "customer_identities::latest_address_of",
            customer_identities::latest_address_of(of_message("customer_id"), of_message("channel")),
        ),
        (
            "crm_contacts::crm_ids_of",
            crm_contacts::crm_ids_of(
                Sql::new("SELECT value FROM json_each(:customers)")
                    .bind("customers", super::json_list([customer.as_str()])),
            ),
        ),
        (
            "abort_unless(attachments::all_linked)",
            abort_unless(attachments::all_linked(&message, 2)),
        ),
        (
            "webhook_events::record (message, always)",
            record(
                &[event(EventType::MessageReceived, message.as_str())],
                Guard::Always,
            ),
        ),
        (
            "webhook_events::record (customers, stored)",
            record(
                &[
                    event(EventType::CustomerCreated, customer.as_str()),
                    event(EventType::CustomerUpdated, customer.as_str()),
                ],
                Guard::SubjectStored,
            ),
        ),
        (
            "webhook_events::record (customer, updated at)",
            record(
                &[event(EventType::CustomerUpdated, customer.as_str())],
                Guard::SubjectUpdatedAt(stamp.clone()),
            ),
        ),
        (
            "webhook_events::record (conversation changed)",
            record(
                &[event(EventType::ConversationStatusChanged, conversation.as_str())],
                Guard::When(conversations::changed_to(
                    &conversation,
                    ConversationStatus::Resolved,
                    Some("ana"),
                    &stamp,
                )),
            ),
        ),
        (
            "webhook_events::record (message moved, once)",
            record(
                &[event(EventType::MessageSent, message.as_str())],
                Guard::When(
                    messages::moved_to(&message, MessageStatus::Sent, &stamp)
                        .and(webhook_events::none_recorded(EventType::MessageSent, &message)),
                ),
            ),
        ),
        (
            "webhook_events::record (customer exists, address not linked)",
            record(
                &[event(EventType::CustomerUpdated, customer.as_str())],
                Guard::When(
                    customers::exists(&customer).and(customer_identities::not_linked("whatsapp", "+3531")),
                ),
            ),
        ),
        (
            "webhook_events::record_found (reopened)",
            webhook_events::record_found_sql(
                None,
                now,
                &EventId::generate([5; 16]),
                EventType::ConversationStatusChanged,
                conversations::reopened_by(Channel::Whatsapp, "+3531", &message),
            ),
        ),
    ];
    let sweeps: Vec<(&str, Sql)> = vec![
        (
            "webhook_events::expired",
            webhook_events::expired(&super::directory::Moving::NONE, now, 100),
        ),
        (
            "webhook_deliveries::none_pending",
            webhook_deliveries::none_pending("e.id").within("SELECT e.id FROM webhook_events e WHERE {sql}"),
        ),
    ];
    let mut db = migrated();
    let schema = schema(&db);
    let mut failures = Vec::new();
    for (scope, statements) in [(true, &scoped), (false, &sweeps)] {
        for (name, sql) in statements {
            let sql = match sql.numbered(scope) {
                Ok((sql, _)) => sql,
                Err(error) => {
                    failures.push(format!("{name}: {error:?}"));
                    continue;
                }
            };
            if let Err(error) = db.prepare(&sql) {
                failures.push(format!("{name}: {error}\n  {sql}"));
                continue;
            }
            let tables = unscoped_tables(&schema, &accesses(&mut db, &sql));
            if scope && !tables.is_empty() {
                failures.push(format!("{name} never reads business_id of {tables:?}\n  {sql}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "composed statements:\n{}",
        failures.join("\n")
    );
}

/// A composed statement of one business that forgets `:business`, or binds it itself, or leaves
/// a name unbound, is refused before it reaches D1.
#[test]
fn a_composed_statement_is_refused_when_its_names_are_wrong() {
    use super::{Sql, text};
    let refused = |sql: Sql, scoped| sql.numbered(scoped).is_err();
    assert!(refused(
        Sql::new("SELECT 1 FROM customers WHERE id = :id").bind("id", text("c")),
        true
    ));
    assert!(refused(
        Sql::new("SELECT 1 FROM customers WHERE business_id = :business").bind("business", text("b")),
        true
    ));
    assert!(refused(
        Sql::new("SELECT 1 FROM customers WHERE business_id = :business AND id = :id"),
        true
    ));
    assert!(refused(
        Sql::new("SELECT 1 WHERE :a = 1")
            .bind("a", text("x"))
            .bind("a", text("y")),
        false
    ));
    let (sql, values) = Sql::new("SELECT 1 FROM customers WHERE id = :id AND business_id = :business")
        .bind("id", text("c"))
        .numbered(true)
        .unwrap_or_else(|error| panic!("{error:?}"));
    assert_eq!(sql, "SELECT 1 FROM customers WHERE id = ?2 AND business_id = ?1");
    assert_eq!(values, [text("c")]);
}

/// The query plan SQLite makes for `sql`, one line per step.
pub(crate) fn plan(db: &rusqlite::Connection, sql: &str) -> Vec<String> {
    let mut statement = db
        .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
        .unwrap_or_else(|error| panic!("{error}: {sql}"));
    let unbound = vec![rusqlite::types::Null; statement.parameter_count()];
    statement
        .query_map(rusqlite::params_from_iter(unbound), |row| row.get::<_, String>(3))
        .unwrap_or_else(|error| panic!("{error}"))
        .filter_map(Result::ok)
        .collect()
}

#[test]
fn a_lookup_by_keys_searches_each_key_and_never_walks_the_business() {
    use domain::lookup::KeyKind;
    let db = migrated();
    let sql = super::customers::select_by_keys(
        "id",
        &[
            (KeyKind::Id, 2),
            (KeyKind::ExternalId, 3),
            (KeyKind::Email, 4),
            (KeyKind::Phone, 5),
        ],
    );
    let searches: Vec<String> = plan(&db, &sql)
        .into_iter()
        .filter(|step| step.contains("customers"))
        .collect();
    assert_eq!(
        searches,
        [
            "SEARCH customers USING INDEX sqlite_autoindex_customers_1 (id=?)",
            "SEARCH customers USING INDEX customers_by_external_id (business_id=? AND external_id=?)",
            "SEARCH customers USING INDEX customers_by_email (business_id=? AND email=?)",
            "SEARCH customers USING INDEX customers_by_phone (business_id=? AND phone=?)",
        ]
    );
}

/// The steps of the fixed statements' plans that walk rows instead of finding them, each on
/// purpose: (module, function, the table or alias the step walks, why). A step walks when it
/// scans a table, or searches one by nothing narrower than the business (see the module note in
/// `db` on `+business_id`). A new walk fails the test below until it finds its rows by a key or
/// is added here with its reason; an entry no plan needs any more fails it too.
const WALKS: &[(&str, &str, &str, &str)] = &[
    // The sweep's erasures under way: a partial index of them alone, oldest first.
    (
        "customer_erasures",
        "erasing",
        "customer_erasures",
        "the erasures under way (their own partial index), a few a run",
    ),
    // A customers link's page leaves out the records of the business's erased customers.
    (
        "customer_erasures",
        "subjects_of_business",
        "customer_erasures",
        "the business's erasures, once per page of a customers link",
    ),
    // A discarded restore's, once: its one directory entry, and the claims of its addresses,
    // which are keyed by address (a lookup's key), not by business.
    (
        "directory",
        "forget_business",
        "business_shards",
        "the business's one entry (its key)",
    ),
    (
        "directory",
        "forget_business",
        "channel_addresses",
        "once per discarded restore: the deployment's claimed addresses, one a channel account",
    ),
    // A restore page's record of what it pauses: each part's ids recorded so far united with the
    // rows of it that are on (the business's few accounts, connectors, endpoints, link entries).
    (
        "businesses",
        "record_quarantine",
        "(subquery-2)",
        "the channel accounts recorded and on, united",
    ),
    (
        "businesses",
        "record_quarantine",
        "(subquery-5)",
        "the connectors recorded and on, united",
    ),
    (
        "businesses",
        "record_quarantine",
        "(subquery-8)",
        "the webhook endpoints recorded and on, united",
    ),
    (
        "businesses",
        "record_quarantine",
        "(subquery-11)",
        "the link entries recorded and on, united",
    ),
    (
        "knowledge_chunks",
        "mark_restored",
        "knowledge_sources",
        "a restore's: the business's sources (50 at most), each then its pieces by its own index",
    ),
    (
        "api_keys",
        "revoke_all",
        "api_keys",
        "a restore's quarantine: once per restore, every row of the business of its kind",
    ),
    (
        "bot_turns",
        "drop_all",
        "bot_turns",
        "a restore's quarantine: once per restore, every row of the business of its kind",
    ),
    (
        "businesses",
        "record_quarantine",
        "channel_accounts",
        "a restore's quarantine: once per restore, every row of the business of its kind",
    ),
    (
        "businesses",
        "record_quarantine",
        "crm_connectors",
        "a restore's quarantine: once per restore, every row of the business of its kind",
    ),
    (
        "businesses",
        "record_quarantine",
        "webhook_endpoints",
        "a restore's quarantine: once per restore, every row of the business of its kind",
    ),
    (
        "businesses",
        "record_quarantine",
        "knowledge_links",
        "a restore's quarantine: once per restore, every row of the business of its kind",
    ),
    (
        "channel_accounts",
        "pause_all",
        "channel_accounts",
        "a restore's quarantine: once per restore, every row of the business of its kind",
    ),
    (
        "console_sessions",
        "revoke_all",
        "console_sessions",
        "a restore's quarantine: once per restore, every row of the business of its kind",
    ),
    (
        "crm_connectors",
        "disable_all",
        "crm_connectors",
        "a restore's quarantine: once per restore, every row of the business of its kind",
    ),
    (
        "crm_sync_jobs",
        "kill_pending",
        "crm_sync_jobs",
        "a restore's quarantine: once per restore, every row of the business of its kind",
    ),
    (
        "knowledge_links",
        "deactivate_all",
        "knowledge_links",
        "a restore's quarantine: once per restore, every row of the business of its kind",
    ),
    (
        "messages",
        "fail_queued",
        "messages",
        "a restore's quarantine: once per restore, every row of the business of its kind",
    ),
    (
        "sso_tokens",
        "revoke_all",
        "sso_tokens",
        "a restore's quarantine: once per restore, every row of the business of its kind",
    ),
    (
        "webhook_deliveries",
        "kill_pending",
        "webhook_deliveries",
        "a restore's quarantine: once per restore, every row of the business of its kind",
    ),
    (
        "webhook_endpoints",
        "disable_all",
        "webhook_endpoints",
        "a restore's quarantine: once per restore, every row of the business of its kind",
    ),
    (
        "placements",
        "SHARD_OF",
        "business_shards",
        "the directory's one row of a business: business_id is its key, not a tenant column",
    ),
    (
        "directory",
        "entry",
        "business_shards",
        "the directory's one row of a business, for a move: business_id is its key",
    ),
    (
        "directory",
        "unsettled",
        "business_shards",
        "the partial index of the entries a move is under way in (business_shards_moves): a handful",
    ),
    (
        "directory",
        "forget_copy",
        "business_shards",
        "the directory's one row of a business, for a move: business_id is its key",
    ),
    (
        "channel_accounts",
        "channels",
        "channel_accounts",
        "the channels of the business's accounts: a handful of rows, all of which it reads",
    ),
    // Heads of statements: every caller completes them with its WHERE.
    (
        "crm_connectors",
        "SELECT",
        "c",
        "a column list its callers complete",
    ),
    (
        "knowledge_sources",
        "SELECT",
        "s",
        "a column list its callers complete",
    ),
    (
        "customers",
        "UPDATE_SQL",
        "u",
        "the request's own rows, materialised",
    ),
    (
        "customers",
        "KEYS_SQL",
        "u",
        "the request's own rows, materialised",
    ),
    // Sweeps: oldest first across businesses, stopping at their LIMIT.
    (
        "crm_sync_jobs",
        "delete_settled_before",
        "crm_sync_jobs",
        "the sweep, in seq order, to its LIMIT",
    ),
    (
        "webhook_attempts",
        "delete_older_than",
        "webhook_attempts",
        "the sweep, in id order, to its LIMIT",
    ),
    // A business's few rows of configuration: its connectors, endpoints, sources and links.
    (
        "crm_connectors",
        "enabled_read",
        "crm_connectors",
        "a business's connectors",
    ),
    (
        "webhook_deliveries",
        "first_due",
        "e",
        "a business's webhook endpoints",
    ),
    (
        "webhook_deliveries",
        "list",
        "(subquery-1)",
        "a page of the endpoint's delivery rows and one of its first attempts that delivered, merged",
    ),
    (
        "webhook_deliveries",
        "list",
        "(subquery-4)",
        "a page of the endpoint's first attempts that delivered, merged with one of its delivery rows",
    ),
    ("knowledge_chunks", "counts", "s", "a business's CRM link sources"),
    // Keyword search's own results, materialised: one row of the business's sources, one count,
    // the counts per query word (at most 32), and the pieces that hold those words.
    (
        "knowledge_chunks",
        "STATISTICS",
        "s",
        "the one row the searched sources sum to",
    ),
    (
        "knowledge_chunks",
        "STATISTICS",
        "n",
        "the one row of the searched sources' piece count",
    ),
    (
        "knowledge_chunks",
        "STATISTICS",
        "(subquery-11)",
        "a word's holders within the sources, up to just past half of them",
    ),
    (
        "knowledge_chunks",
        "RANKING",
        "tf",
        "the occurrences of the weighing words in the pieces that hold them",
    ),
    (
        "knowledge_chunks",
        "RANKING",
        "scored",
        "the pieces that hold a weighing word, each scored once",
    ),
    ("knowledge_chunks", "RANKING", "s", "the k best pieces"),
    (
        "knowledge_sources",
        "counts",
        "knowledge_sources",
        "a business's CRM link sources",
    ),
    (
        "knowledge_sources",
        "insert_within",
        "knowledge_sources",
        "counts a business's CRM link sources against its caps (50 at most) as it inserts one",
    ),
    (
        "knowledge_sources",
        "delete",
        "knowledge_links",
        "a business's links of sources to pages",
    ),
    (
        "knowledge_links",
        "list",
        "knowledge_links",
        "a business's links of sources to pages",
    ),
    (
        "knowledge_links",
        "set_active",
        "knowledge_links",
        "a business's links of sources to pages",
    ),
    (
        "knowledge_links",
        "delete",
        "knowledge_links",
        "a business's links of sources to pages",
    ),
    (
        "alert_settings",
        "get",
        "alert_settings",
        "the business's one row: business_id is its key",
    ),
    (
        "alert_settings",
        "of",
        "alert_settings",
        "each business's one row: business_id is its key",
    ),
    (
        "alerts",
        "open_on_shard",
        "alerts",
        "the partial index of open alerts (alerts_open): a handful per business that has any",
    ),
    (
        "alerts",
        "list",
        "alerts",
        "the business's open alerts counted: a handful",
    ),
    (
        "crm_connectors",
        "alert_signals",
        "c",
        "the alert rules read each enabled connector of the shard once a minute (its oldest waiting work by index)",
    ),
    (
        "knowledge_sources",
        "alert_measures",
        "knowledge_sources",
        "the partial index of the links whose fetches fail (knowledge_sources_failing)",
    ),
    (
        "webhook_endpoints",
        "alert_signals",
        "webhook_endpoints",
        "the partial index of the endpoints failing or disabled (webhook_endpoints_unwell)",
    ),
    (
        "directory",
        "record",
        "business_shards",
        "business_id is business_shards' key (its unique index): one row, found by it",
    ),
    // Reads a person asks for, not on a request path a CRM drives.
    (
        "escalations",
        "rate",
        "conversations",
        "the escalation rate report: a period's conversations",
    ),
    (
        "webhook_attempts",
        "list",
        "webhook_attempts",
        "the attempts log, newest first, any filter optional",
    ),
];

/// The table or alias a plan step walks, if it walks one.
fn walked(step: &str) -> Option<&str> {
    let what = step.split_whitespace().nth(1)?;
    let scans =
        step.starts_with("SCAN ") && !step.contains("VIRTUAL TABLE") && !step.contains("CONSTANT ROW");
    let by_business = step.starts_with("SEARCH ") && step.ends_with("(business_id=?)");
    (scans || by_business).then_some(what)
}

#[test]
fn no_statement_walks_rows_it_could_find_by_key() {
    let mut db = migrated();
    let mut walks = Vec::new();
    let mut allowed = BTreeSet::new();
    for statement in fixed_statements() {
        if accesses(&mut db, &statement.sql).is_empty() {
            continue;
        }
        for step in plan(&db, &statement.sql) {
            let Some(what) = walked(&step) else { continue };
            let place = (statement.module.as_str(), statement.function.as_str(), what);
            if WALKS
                .iter()
                .any(|(module, function, walked, _)| (*module, *function, *walked) == place)
            {
                allowed.insert(format!("{}::{} {what}", place.0, place.1));
            } else {
                walks.push(format!(
                    "{}::{}: {step}\n  {}",
                    statement.module,
                    statement.function,
                    statement.sql.split_whitespace().collect::<Vec<_>>().join(" ")
                ));
            }
        }
    }
    assert!(
        walks.is_empty(),
        "statements whose plan walks rows (find them by key, or add them to WALKS with the reason):\n{}",
        walks.join("\n")
    );
    let stale: Vec<String> = WALKS
        .iter()
        .map(|(module, function, walked, _)| format!("{module}::{function} {walked}"))
        .filter(|place| !allowed.contains(place))
        .collect();
    assert!(stale.is_empty(), "WALKS entries no plan needs: {stale:?}");
}
