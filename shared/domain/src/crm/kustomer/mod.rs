//! Kustomer, both directions, as plain Rust: the connector's settings and secrets, how our
//! customers map onto Kustomer's, the requests its REST API documents and how to read its
//! answers, its signed outbound webhooks, and when and how a conversation is handed to a person.
//!
//! The runtime sends what [`api`] builds to [`KustomerSettings::api_base`] with
//! `Authorization: Bearer <api_key>` and hands webhook bodies to [`webhook`] after
//! [`webhook::verify`]; nothing here touches the network, the clock or storage.

pub mod api;
pub mod escalation;
pub mod mapping;
pub mod settings;
pub mod webhook;

pub use mapping::{FieldMapping, external_id_of};
pub use settings::{KustomerSecrets, KustomerSettings, Priority};

/// Kustomer refuses a note whose body is longer than this many characters.
pub const MAX_NOTE_CHARS: usize = 10_240;

/// The first `max_chars` characters of `text`, ending with `marker` when something was cut, so
/// that the result is never longer than `max_chars` and never split inside a character.
pub(crate) fn cut_chars(text: &str, max_chars: usize, marker: &str) -> String {
    if text.chars().count() <= max_chars {
        return text.to_owned();
    }
    let keep = max_chars.saturating_sub(marker.chars().count());
    let mut cut: String = text.chars().take(keep).collect();
    cut.push_str(marker);
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_cut_on_a_character_boundary_and_marked() {
        assert_eq!(cut_chars("short", 10, "…"), "short");
        assert_eq!(cut_chars("héllo wörld", 6, "…"), "héllo…");
        assert_eq!(cut_chars("日本語のテキスト", 4, "[…]"), "日[…]");
        assert_eq!(cut_chars("abc", 0, ""), "");
    }
}
