//! Which function owns which path. Paths are the seed's, so its client code works unchanged.

/// The service binding (declared in the top-level `wrangler.toml`) that serves `path`.
pub fn function_for(path: &str) -> Option<&'static str> {
    let path = path.strip_suffix('/').filter(|p| !p.is_empty()).unwrap_or(path);
    match path {
        "/api-customers" => Some("CUSTOMERS"),
        "/api-customers-sync" => Some("CUSTOMERS_SYNC"),
        "/api-customers-bulk-create" => Some("CUSTOMERS_BULK_CREATE"),
        "/api-customers-batch-lookup" => Some("CUSTOMERS_BATCH_LOOKUP"),
        _ if path.starts_with("/admin/") => Some("ADMIN"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::function_for;

    #[test]
    fn each_seed_path_reaches_its_function() {
        let cases = [
            ("/api-customers", Some("CUSTOMERS")),
            ("/api-customers/", Some("CUSTOMERS")),
            ("/api-customers-sync", Some("CUSTOMERS_SYNC")),
            ("/api-customers-bulk-create", Some("CUSTOMERS_BULK_CREATE")),
            ("/api-customers-batch-lookup", Some("CUSTOMERS_BATCH_LOOKUP")),
            ("/admin/businesses", Some("ADMIN")),
            ("/admin/api-keys/x", Some("ADMIN")),
            ("/admin", None),
            ("/api-customers-syncx", None),
            ("/", None),
            ("/../admin/businesses", None),
        ];
        for (path, expected) in cases {
            assert_eq!(function_for(path), expected, "{path}");
        }
    }
}
