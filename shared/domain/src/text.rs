//! Text cut to a size a partner accepts, text put into a page, and text in lowercase.

/// The first `max_chars` characters of `text`, ending with `marker` when something was cut, so
/// that the result is never longer than `max_chars` and never split inside a character.
pub fn cut_chars(text: &str, max_chars: usize, marker: &str) -> String {
    if text.chars().count() <= max_chars {
        return text.to_owned();
    }
    let keep = max_chars.saturating_sub(marker.chars().count());
    let mut cut: String = text.chars().take(keep).collect();
    cut.push_str(marker);
    cut
}

/// `text` for a page's HTML, as text and within a quoted attribute: nothing in it is markup.
pub fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// `text` in lowercase by Unicode's full case mapping, a word's final Σ as ς: what Rust's
/// `str::to_lowercase` does. In a bundle the JavaScript engine does it (`toLowerCase`, the same
/// mapping): Rust's case table would cost every bundle that reads an email address 8 KB gzip.
pub fn lowercase(text: &str) -> String {
    if text.is_ascii() {
        text.to_ascii_lowercase()
    } else {
        lowercase_unicode(text)
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn lowercase_unicode(text: &str) -> String {
    text.to_lowercase()
}

#[cfg(target_arch = "wasm32")]
fn lowercase_unicode(text: &str) -> String {
    js_sys::JsString::from(text).to_lower_case().into()
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

    #[test]
    fn lowercase_is_unicode_lowercase_whatever_the_path() {
        for text in [
            "John.Doe@Example.COM",
            "ÉLODIE@Exemple.FR",
            "ΟΔΟΣ",
            "İstanbul",
            "already lower",
        ] {
            assert_eq!(lowercase(text), text.to_lowercase(), "{text}");
        }
        assert_eq!(lowercase("ΟΔΟΣ"), "οδος");
    }

    #[test]
    fn text_put_into_a_page_is_never_markup() {
        assert_eq!(
            escape_html(r#"<script>alert('x')</script> & "quoted""#),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;quoted&quot;"
        );
        assert_eq!(escape_html("Acme Dental"), "Acme Dental");
    }
}
