//! From a CSV export's columns to the API's customer fields: the columns of common CRM exports
//! (Salesforce, HubSpot) are recognised by name, `--map column=field` overrides, and every other
//! column is kept as a custom field rather than dropped.

use serde_json::{Map, Value};

/// Where one column goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Field(&'static str),
    /// A phone column read only when the row has no `phone` (a mobile beside an office phone).
    PhoneFallback,
    /// `tags`: the cell split on `;` or `,`.
    Tags,
    Custom(String),
    Skip,
}

/// The customer fields a column may be mapped to with `--map`.
pub const FIELDS: [&str; 11] = [
    "external_id",
    "external_system",
    "name",
    "first_name",
    "last_name",
    "email",
    "phone",
    "whatsapp_number",
    "address",
    "notes",
    "tags",
];

/// Column names as exports write them, compared without case, spaces, `_` or `-`.
const KNOWN: &[(&str, Target)] = &[
    ("externalid", Target::Field("external_id")),
    ("id", Target::Field("external_id")),
    ("contactid", Target::Field("external_id")),
    ("recordid", Target::Field("external_id")),
    ("externalsystem", Target::Field("external_system")),
    ("name", Target::Field("name")),
    ("fullname", Target::Field("name")),
    ("firstname", Target::Field("first_name")),
    ("lastname", Target::Field("last_name")),
    ("email", Target::Field("email")),
    ("emailaddress", Target::Field("email")),
    ("phone", Target::Field("phone")),
    ("phonenumber", Target::Field("phone")),
    ("businessphone", Target::Field("phone")),
    ("mobile", Target::PhoneFallback),
    ("mobilephone", Target::PhoneFallback),
    ("mobilephonenumber", Target::PhoneFallback),
    ("whatsapp", Target::Field("whatsapp_number")),
    ("whatsappnumber", Target::Field("whatsapp_number")),
    ("address", Target::Field("address")),
    ("streetaddress", Target::Field("address")),
    ("mailingstreet", Target::Field("address")),
    ("notes", Target::Field("notes")),
    ("description", Target::Field("notes")),
    ("tags", Target::Tags),
];

fn normalised(column: &str) -> String {
    column
        .chars()
        .filter(|c| !matches!(c, ' ' | '_' | '-'))
        .flat_map(char::to_lowercase)
        .collect()
}

/// How each column of a header maps, in column order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    columns: Vec<(String, Target)>,
}

impl Mapping {
    /// The header's columns, recognised by name unless `overrides` (`column=field`, or
    /// `column=skip`, or `column=custom_fields.<key>`) says otherwise.
    pub fn new(header: &[String], overrides: &[(String, String)]) -> Result<Self, String> {
        for (column, _) in overrides {
            if !header.iter().any(|h| h == column) {
                return Err(format!(
                    "--map names the column {column:?}, which the file's header does not have"
                ));
            }
        }
        let columns = header
            .iter()
            .map(|column| {
                let target = match overrides.iter().find(|(c, _)| c == column) {
                    Some((_, field)) => parse_target(field)?,
                    None => KNOWN
                        .iter()
                        .find(|(name, _)| *name == normalised(column))
                        .map_or_else(|| Target::Custom(column.trim().to_owned()), |(_, t)| t.clone()),
                };
                Ok((column.clone(), target))
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Self { columns })
    }

    /// One row as the API's customer object. Empty cells are left out.
    pub fn customer(&self, row: &[String]) -> Value {
        let mut customer = Map::new();
        let mut custom = Map::new();
        let mut fallback_phone = None;
        for ((_, target), cell) in self.columns.iter().zip(row) {
            let cell = cell.trim();
            if cell.is_empty() {
                continue;
            }
            match target {
                Target::Field(field) => {
                    customer.insert((*field).to_owned(), Value::from(cell));
                }
                Target::PhoneFallback => fallback_phone = fallback_phone.or(Some(cell)),
                Target::Tags => {
                    let tags: Vec<Value> = cell
                        .split([';', ','])
                        .map(str::trim)
                        .filter(|t| !t.is_empty())
                        .map(Value::from)
                        .collect();
                    customer.insert("tags".to_owned(), Value::Array(tags));
                }
                Target::Custom(key) => {
                    custom.insert(key.clone(), Value::from(cell));
                }
                Target::Skip => {}
            }
        }
        if let Some(phone) = fallback_phone {
            customer.entry("phone").or_insert_with(|| Value::from(phone));
        }
        if !customer.contains_key("name") {
            let full: Vec<&str> = ["first_name", "last_name"]
                .iter()
                .filter_map(|field| customer.get(*field).and_then(Value::as_str))
                .collect();
            if !full.is_empty() {
                customer.insert("name".to_owned(), Value::from(full.join(" ")));
            }
        }
        if !custom.is_empty() {
            customer.insert("custom_fields".to_owned(), Value::Object(custom));
        }
        Value::Object(customer)
    }
}

fn parse_target(field: &str) -> Result<Target, String> {
    let field = field.trim();
    if field == "skip" {
        return Ok(Target::Skip);
    }
    if field == "tags" {
        return Ok(Target::Tags);
    }
    if let Some(key) = field.strip_prefix("custom_fields.").filter(|k| !k.is_empty()) {
        return Ok(Target::Custom(key.to_owned()));
    }
    FIELDS
        .iter()
        .find(|f| **f == field)
        .map(|f| Target::Field(f))
        .ok_or_else(|| {
            format!(
                "--map: {field:?} is not a customer field; use one of {}, custom_fields.<key> or skip",
                FIELDS.join(", ")
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn strings(values: &[&str]) -> Vec<String> {
        values.iter().map(|v| (*v).to_owned()).collect()
    }

    #[test]
    fn a_salesforce_contact_export_maps_by_its_column_names() {
        let header = strings(&[
            "Contact ID",
            "First Name",
            "Last Name",
            "Email",
            "Phone",
            "Mobile Phone",
            "Mailing Street",
            "Account Name",
        ]);
        let mapping = Mapping::new(&header, &[]).unwrap_or_else(|e| panic!("{e}"));
        let row = strings(&[
            "003XX1",
            "Ann",
            "Lee",
            "ann@example.com",
            "",
            "087 123 4567",
            "1 Main St",
            "Acme",
        ]);
        assert_eq!(
            mapping.customer(&row),
            json!({
                "external_id": "003XX1",
                "first_name": "Ann",
                "last_name": "Lee",
                "name": "Ann Lee",
                "email": "ann@example.com",
                "phone": "087 123 4567",
                "address": "1 Main St",
                "custom_fields": {"Account Name": "Acme"},
            })
        );
    }

    #[test]
    fn a_hubspot_export_maps_too_and_an_office_phone_wins_over_a_mobile() {
        let header = strings(&[
            "Record ID",
            "Email",
            "Phone Number",
            "Mobile Phone Number",
            "Lifecycle Stage",
        ]);
        let mapping = Mapping::new(&header, &[]).unwrap_or_else(|e| panic!("{e}"));
        let row = strings(&[
            "51",
            "b@example.com",
            "+353 1 555 0100",
            "+353 87 000 0000",
            "lead",
        ]);
        let customer = mapping.customer(&row);
        assert_eq!(customer["external_id"], "51");
        assert_eq!(customer["phone"], "+353 1 555 0100");
        assert_eq!(customer["custom_fields"], json!({"Lifecycle Stage": "lead"}));
        assert!(
            customer.get("name").is_none(),
            "no name to derive: the API says so per row"
        );
    }

    #[test]
    fn overrides_win_and_are_checked() {
        let header = strings(&["Ref", "Who", "Labels", "Internal"]);
        let overrides = [
            ("Ref".to_owned(), "external_id".to_owned()),
            ("Who".to_owned(), "name".to_owned()),
            ("Labels".to_owned(), "tags".to_owned()),
            ("Internal".to_owned(), "skip".to_owned()),
        ];
        let mapping = Mapping::new(&header, &overrides).unwrap_or_else(|e| panic!("{e}"));
        let row = strings(&["R1", "Cara", "vip; churn-risk,", "secret"]);
        assert_eq!(
            mapping.customer(&row),
            json!({"external_id": "R1", "name": "Cara", "tags": ["vip", "churn-risk"]})
        );
        assert!(Mapping::new(&header, &[("Nope".to_owned(), "name".to_owned())]).is_err());
        assert!(Mapping::new(&header, &[("Ref".to_owned(), "nickname".to_owned())]).is_err());
    }
}
