//! The partners crm-edge calls, as scripts that speak their real protocols.
