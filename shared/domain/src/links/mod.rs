//! CRM links: URLs of a business's CRM data (per Facebook page and channel) that are fetched on a
//! schedule and made searchable for the chatbot. This module is the pure part of that pipeline:
//! the link as the admin API takes it ([`link`]), a fetched body as text lines ([`flatten`]),
//! those lines cut into hashed chunks ([`chunk`]), and the words of keyword search ([`keyword`]).

pub mod change;
pub mod chunk;
pub mod document;
pub mod fetch;
pub mod flatten;
pub mod identifiers;
pub mod keyword;
pub mod link;
pub mod search;
