//! Every fixed SQL statement of the table modules, prepared natively against the real migrations
//! (D1 is SQLite): a statement that names a table, column or index the schema does not have, or
//! that SQLite cannot parse, fails here instead of in a request. Statements built from fragments
//! (`{sql}` holes, column lists put in with `format!`) are not fixed text and are left to the
//! end-to-end tests.

use std::fs;
use std::path::{Path, PathBuf};

/// The string literals of a Rust source, before its tests, with their escapes resolved.
fn string_literals(source: &str) -> Vec<String> {
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
                literals.push(rest[..end].to_owned());
                at = start + 1 + rest[..end].chars().count() + closing.chars().count();
            }
            '"' => {
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
                literals.push(text);
                at += 1;
            }
            _ => at += 1,
        }
    }
    literals
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

fn migrated_database(root: &Path) -> rusqlite::Connection {
    let db = rusqlite::Connection::open_in_memory().unwrap_or_else(|error| panic!("{error}"));
    let mut migrations: Vec<PathBuf> = fs::read_dir(root.join("migrations"))
        .unwrap_or_else(|error| panic!("{error}"))
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|extension| extension == "sql"))
        .collect();
    migrations.sort();
    for migration in &migrations {
        let sql = fs::read_to_string(migration).unwrap_or_else(|error| panic!("{error}"));
        db.execute_batch(&sql)
            .unwrap_or_else(|error| panic!("{}: {error}", migration.display()));
    }
    db
}

#[test]
fn every_fixed_statement_prepares_against_the_migrated_schema() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let db = migrated_database(&crate_dir.join("../.."));
    let mut checked = 0;
    let mut failures = Vec::new();
    let mut modules: Vec<PathBuf> = fs::read_dir(crate_dir.join("src/db"))
        .unwrap_or_else(|error| panic!("{error}"))
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .collect();
    modules.sort();
    for module in modules {
        let source = fs::read_to_string(&module).unwrap_or_else(|error| panic!("{error}"));
        for statement in string_literals(&source)
            .into_iter()
            .filter(|text| is_fixed_statement(text))
        {
            match db.prepare(&statement) {
                Ok(_) => checked += 1,
                // The head of a statement its module completes with `format!`: a fragment.
                Err(error) if error.to_string() == "incomplete input" => {}
                Err(error) => {
                    let name = module
                        .file_name()
                        .map(|name| name.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    failures.push(format!("{name}: {error}\n  {}", statement.trim()));
                }
            }
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
    let db = migrated_database(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."));
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
