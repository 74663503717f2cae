//! CRM connectors, the pure part: which CRMs exist, what work a connector does and how it ends,
//! the request budget, the retry policy, and what a debug log may show.

pub mod analytics;
pub mod budget;
pub mod chatwoot;
pub mod config;
pub mod fields;
pub mod krayin;
pub mod kustomer;
pub mod redact;
pub mod retry;
pub mod settle;
pub mod work;
