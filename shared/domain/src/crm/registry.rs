//! The CRMs a connector can be for: each one's pure part ([`crate::crm::spec::Crm`], in its
//! folder), registered here and only here, in [`with_crm!`], with its `ConnectorKind` variant
//! (`crate::crm::work`). Its runtime part is `edge::crm::Connected`, which edge implements for
//! each type named here: a CRM registered without its runtime part does not compile.

/// Runs `$body` with `$crm` naming the `spec::Crm` of `$kind` (a `ConnectorKind`). `edge::crm` implements its runtime
/// trait for each of these types, so a CRM registered here without its runtime part does not
/// compile.
#[macro_export]
macro_rules! with_crm {
    ($kind:expr, $crm:ident => $body:expr) => {
        match $kind {
            $crate::crm::work::ConnectorKind::Kustomer => {
                type $crm = $crate::crm::kustomer::Kustomer;
                $body
            }
            $crate::crm::work::ConnectorKind::Krayin => {
                type $crm = $crate::crm::krayin::Krayin;
                $body
            }
            $crate::crm::work::ConnectorKind::HubSpot => {
                type $crm = $crate::crm::hubspot::HubSpot;
                $body
            }
            $crate::crm::work::ConnectorKind::Salesforce => {
                type $crm = $crate::crm::salesforce::Salesforce;
                $body
            }
        }
    };
}
