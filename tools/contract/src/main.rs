//! Writes what follows from the endpoints' declarations (`shared/domain/src/api/`): the API's
//! contract, `openapi.json`, and the table of endpoints the contract tests read. Natively only:
//! the declarations' types are described with domain's `openapi` feature, which no bundle has.
//!
//!     contract write    write the files
//!     contract check    list the files that differ from what the declarations give; exit 1 if any
//!     contract print    print openapi.json
//!     contract routes   print the paths the gateway hands each function, as JSON (scripts/configure
//!                       writes the gateway's route table and service bindings from it)

use std::path::{Path, PathBuf};
use std::process::ExitCode;

fn main() -> ExitCode {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let root = root.canonicalize().unwrap_or(root);
    match std::env::args().nth(1).as_deref() {
        Some("write") => {
            for (path, text) in &files(&root) {
                if std::fs::read_to_string(path).ok().as_deref() == Some(text.as_str()) {
                    continue;
                }
                if let Err(error) = std::fs::write(path, text) {
                    eprintln!("writing {}: {error}", path.display());
                    return ExitCode::FAILURE;
                }
                eprintln!("wrote {}", path.strip_prefix(&root).unwrap_or(path).display());
            }
            let problems = features(&root);
            for problem in &problems {
                eprintln!("{problem}");
            }
            if problems.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Some("check") => {
            let problems = features(&root);
            for problem in &problems {
                eprintln!("{problem}");
            }
            let drifted: Vec<String> = files(&root)
                .iter()
                .filter(|(path, text)| std::fs::read_to_string(path).ok().as_deref() != Some(text.as_str()))
                .map(|(path, _)| path.strip_prefix(&root).unwrap_or(path).display().to_string())
                .collect();
            if drifted.is_empty() {
                return if problems.is_empty() {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                };
            }
            eprintln!(
                "not what the endpoints' declarations give: {} (run scripts/configure)",
                drifted.join(", ")
            );
            ExitCode::FAILURE
        }
        Some("routes") => match routes() {
            Ok(routes) => out(&(serde_json::to_string_pretty(&routes).unwrap_or_default() + "\n")),
            Err(problem) => {
                eprintln!("{problem}");
                ExitCode::FAILURE
            }
        },
        Some("print") => out(&domain::api::openapi::document()),
        _ => {
            eprintln!("usage: contract write | check | print | routes");
            ExitCode::from(2)
        }
    }
}

/// Writes `text` to standard output.
fn out(text: &str) -> ExitCode {
    let written = std::io::Write::write_all(&mut std::io::stdout(), text.as_bytes());
    written.map_or(ExitCode::FAILURE, |()| ExitCode::SUCCESS)
}

/// Each generated file and its text.
fn files(root: &Path) -> Vec<(PathBuf, String)> {
    vec![(root.join("openapi.json"), domain::api::openapi::document())]
}

/// A function that declares an idempotent endpoint builds with edge's `idempotency` feature, and
/// only such a function does (the guard's code is in no other bundle).
fn features(root: &Path) -> Vec<String> {
    let mut idempotent: Vec<(&str, bool)> = Vec::new();
    for declared in domain::api::openapi::endpoints() {
        match idempotent.iter_mut().find(|(name, _)| *name == declared.function) {
            Some((_, any)) => *any |= declared.route.idempotent,
            None => idempotent.push((declared.function, declared.route.idempotent)),
        }
    }
    idempotent
        .into_iter()
        .filter_map(|(function, wanted)| {
            let manifest = root.join("functions").join(function).join("Cargo.toml");
            let text = std::fs::read_to_string(&manifest).unwrap_or_default();
            let enabled = text
                .lines()
                .any(|line| line.trim_start().starts_with("edge") && line.contains("\"idempotency\""));
            (enabled != wanted).then(|| match wanted {
                true => format!(
                    "{function} declares an idempotent endpoint: enable edge's \"idempotency\" feature in {}",
                    manifest.strip_prefix(root).unwrap_or(&manifest).display()
                ),
                false => format!(
                    "{function} declares no idempotent endpoint: drop edge's \"idempotency\" feature from {}",
                    manifest.strip_prefix(root).unwrap_or(&manifest).display()
                ),
            })
        })
        .collect()
}

/// The paths the gateway hands each function, in the gateway's terms: `/path` for that path,
/// `/prefix/*` for every path below. A function that owns a prefix (`Function::owns`) gets all of
/// it for its paths below it; any other path without parameters is its own route, and one with
/// parameters is the prefix before its first parameter. Two functions may not claim one route.
fn routes() -> Result<serde_json::Map<String, serde_json::Value>, String> {
    let mut routes: Vec<(&'static str, String)> = Vec::new();
    for declared in domain::api::openapi::endpoints() {
        if declared.function == "gateway" {
            continue;
        }
        let path = declared.route.path;
        let owned = declared.owns.filter(|owned| path.starts_with(owned));
        let route = match (owned, path.find('{')) {
            (Some(owned), _) => format!("{owned}*"),
            (None, Some(at)) if path[..at].ends_with('/') => format!("{}*", &path[..at]),
            (None, Some(_)) => return Err(format!("{path}: a parameter must be a whole segment")),
            (None, None) => path.to_owned(),
        };
        match routes.iter().find(|(_, known)| *known == route) {
            Some((function, _)) if *function != declared.function => {
                return Err(format!(
                    "{route} is claimed by {function} and {}",
                    declared.function
                ));
            }
            Some(_) => {}
            None => routes.push((declared.function, route)),
        }
    }
    let mut by_function = serde_json::Map::new();
    for (function, route) in routes {
        let entry = by_function
            .entry(function)
            .or_insert_with(|| serde_json::Value::Array(Vec::new()));
        if let serde_json::Value::Array(list) = entry {
            list.push(serde_json::Value::String(route));
        }
    }
    Ok(by_function)
}

#[cfg(test)]
mod tests {
    use super::routes;
    use serde_json::Value;
    use std::collections::HashSet;

    #[test]
    fn every_operation_is_declared_once_with_a_path_of_its_own() {
        let mut ids = HashSet::new();
        let mut routes = HashSet::new();
        for declared in domain::api::openapi::endpoints() {
            let route = declared.route;
            assert!(
                ids.insert(declared.operation_id.clone()),
                "{} twice",
                declared.operation_id
            );
            assert!(
                routes.insert((route.method, route.path)),
                "{} {} twice",
                route.method.as_str(),
                route.path
            );
            assert!(
                route.path.starts_with('/') && !route.path.ends_with('/'),
                "{}",
                route.path
            );
        }
    }

    #[test]
    fn the_document_names_every_operation_and_every_schema_it_refers_to() {
        let document: Value = serde_json::from_str(&domain::api::openapi::document()).unwrap_or_default();
        let text = document.to_string();
        let schemas = document["components"]["schemas"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        for reference in text.split("\"#/components/schemas/").skip(1) {
            let name = reference.split('"').next().unwrap_or_default();
            assert!(
                schemas.contains_key(name),
                "#/components/schemas/{name} is not defined"
            );
        }
        let operations: usize = document["paths"]
            .as_object()
            .map(|paths| {
                paths
                    .values()
                    .map(|item| item.as_object().map_or(0, |methods| methods.len()))
                    .sum()
            })
            .unwrap_or_default();
        assert_eq!(operations, domain::api::openapi::endpoints().len());
    }

    /// Every `description` and `summary` of the document, with where it is.
    fn texts(value: &Value, at: &str, found: &mut Vec<(String, String)>) {
        match value {
            Value::Object(members) => {
                for (name, member) in members {
                    let here = format!("{at}/{name}");
                    match member {
                        Value::String(text) if name == "description" || name == "summary" => {
                            found.push((here, text.clone()));
                        }
                        _ => texts(member, &here, found),
                    }
                }
            }
            Value::Array(items) => {
                for (index, item) in items.iter().enumerate() {
                    texts(item, &format!("{at}/{index}"), found);
                }
            }
            _ => {}
        }
    }

    /// OpenAPI's descriptions are CommonMark: a renderer (Swagger UI, which the API reference
    /// draws with) reads `<path>` or `<key prefix>` as an HTML tag and drops it, and after
    /// `<path>` the rest of its paragraph too. A placeholder in angle brackets is written in a
    /// code span (`` `key:<key prefix>` ``).
    #[test]
    fn no_description_has_an_angle_bracket_a_renderer_takes_for_html() {
        let document: Value = serde_json::from_str(&domain::api::openapi::document()).unwrap_or_default();
        let mut found = Vec::new();
        texts(&document, "", &mut found);
        assert!(found.len() > 100, "the document's texts: {}", found.len());
        let tag_like: Vec<String> = found
            .iter()
            .filter(|(_, text)| {
                // Outside code spans: every other piece between backticks.
                text.split('`').step_by(2).any(|prose| {
                    prose.split('<').skip(1).any(|after| {
                        after.starts_with(|c: char| c.is_ascii_alphabetic() || "/!?".contains(c))
                    })
                })
            })
            .map(|(at, text)| format!("{at}: {text}"))
            .collect();
        assert!(tag_like.is_empty(), "{tag_like:#?}");
    }

    /// The route table the gateway gets, as `scripts/configure` writes it.
    struct Table {
        exact: Vec<(String, String)>,
        prefixes: Vec<(String, String)>,
    }

    impl Table {
        fn derived() -> Self {
            let routes = routes().unwrap_or_else(|problem| panic!("{problem}"));
            let mut table = Self {
                exact: Vec::new(),
                prefixes: Vec::new(),
            };
            for (function, list) in &routes {
                for route in list.as_array().into_iter().flatten().filter_map(Value::as_str) {
                    match route.strip_suffix('*') {
                        Some(prefix) => table.prefixes.push((prefix.to_owned(), function.clone())),
                        None => table.exact.push((route.to_owned(), function.clone())),
                    }
                }
            }
            table
        }

        /// The function the gateway hands `path` to, by the gateway's own rule.
        fn owner(&self, path: &str) -> Option<String> {
            fn view(list: &[(String, String)]) -> Vec<(&str, &str)> {
                list.iter()
                    .map(|(route, function)| (route.as_str(), function.as_str()))
                    .collect()
            }
            domain::api::owner(&view(&self.exact), &view(&self.prefixes), path).map(str::to_owned)
        }

        /// The function that answers `method path`, None for the gateway: as the gateway does, it
        /// answers a path it declares itself (its static files under the console's prefix among
        /// them), with a 405 for a method it does not take there, and hands every other request on
        /// by [`Table::owner`].
        fn answerer(&self, method: &str, path: &str) -> Option<String> {
            match domain::api::route(&domain::api::gateway::GATEWAY, method, path) {
                Ok(_) | Err(domain::api::Miss::NotAllowed(_)) => None,
                Err(domain::api::Miss::NotFound) => self.owner(path),
            }
        }
    }

    #[test]
    fn the_gateway_hands_every_endpoint_to_the_function_that_declares_it() {
        let table = Table::derived();
        for declared in domain::api::openapi::endpoints() {
            let concrete: Vec<&str> = declared
                .route
                .path
                .split('/')
                .map(|segment| match segment.starts_with('{') {
                    true => "8c5e2a8e-2f7a-4b8e-9c1d-0a1b2c3d4e5f",
                    false => segment,
                })
                .collect();
            let expected = (declared.function != "gateway").then(|| declared.function.to_owned());
            assert_eq!(
                table.answerer(declared.route.method.as_str(), &concrete.join("/")),
                expected,
                "{} {}",
                declared.route.method.as_str(),
                declared.route.path
            );
        }
    }

    #[test]
    fn a_prefix_a_function_owns_takes_every_path_below_it() {
        let table = Table::derived();
        assert_eq!(table.owner("/admin/no/such/path").as_deref(), Some("admin"));
        assert_eq!(table.owner("/embed/nothing").as_deref(), Some("embed-inbox"));
        assert_eq!(table.owner("/api-webhooks/x/y/z").as_deref(), Some("webhooks"));
        assert_eq!(table.owner("/nothing"), None);
        // Paths of such a function outside its prefix are routed as anyone else's.
        assert_eq!(table.owner("/api-keys").as_deref(), Some("admin"));
        assert_eq!(table.owner("/api-connectors/x/test").as_deref(), Some("admin"));
        assert_eq!(table.owner("/console").as_deref(), Some("console"));
        assert_eq!(table.owner("/console/sign-in").as_deref(), Some("console"));
    }
}
