//! Text cut to a size a partner accepts, text put into a page, and text read as Unicode reads it
//! (lowercase, letters and digits) without Rust's tables in a bundle.

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

/// Whether `c` is a letter or a digit of any script (Unicode's Alphabetic or Numeric): what
/// Rust's `char::is_alphanumeric` says. In a bundle JavaScript's regular expressions answer for a
/// character outside ASCII (the same two properties), for the same reason as [`lowercase`].
pub fn is_alphanumeric(c: char) -> bool {
    if c.is_ascii() {
        c.is_ascii_alphanumeric()
    } else {
        is_alphanumeric_unicode(c)
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn is_alphanumeric_unicode(c: char) -> bool {
    c.is_alphanumeric()
}

#[cfg(target_arch = "wasm32")]
fn is_alphanumeric_unicode(c: char) -> bool {
    thread_local! {
        static LETTER_OR_DIGIT: js_sys::RegExp = js_sys::RegExp::new(r"^[\p{Alphabetic}\p{N}]$", "u");
    }
    let mut text = [0; 4];
    LETTER_OR_DIGIT.with(|pattern| pattern.test(c.encode_utf8(&mut text)))
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
    fn letters_and_digits_are_those_of_every_script() {
        for c in [
            'a', 'Z', '7', 'é', 'ß', 'Ж', '日', '٣', 'Ⅻ', '_', '-', ' ', '@', '·', '€',
        ] {
            assert_eq!(is_alphanumeric(c), c.is_alphanumeric(), "{c}");
        }
    }

    /// What a bundle asks JavaScript is what Rust says natively: every character's
    /// [`is_alphanumeric`] and [`lowercase`], as Node (the JavaScript the tests run on) answers.
    #[test]
    fn javascript_and_rust_agree_on_every_character() {
        const SCRIPT: &str = r"
            const word = /^[\p{Alphabetic}\p{N}]$/u;
            const out = [];
            for (let c = 0x80; c <= 0x10ffff; c++) {
              if (c >= 0xd800 && c <= 0xdfff) continue;
              const text = String.fromCodePoint(c);
              const lower = text.toLowerCase();
              if (word.test(text) || lower !== text) {
                out.push(`${c} ${word.test(text) ? 1 : 0} ${[...lower].map((l) => l.codePointAt(0)).join(',')}`);
              }
            }
            console.log(out.join('\n'));
        ";
        let node = std::process::Command::new("node").args(["-e", SCRIPT]).output();
        let Ok(node) = node.map(|output| String::from_utf8_lossy(&output.stdout).into_owned()) else {
            panic!("node is needed to compare");
        };
        let mut rust = Vec::new();
        for c in ('\u{80}'..=char::MAX).filter(|c| c.is_alphanumeric() || c.to_lowercase().ne(Some(*c))) {
            let lower: Vec<String> = c
                .to_string()
                .to_lowercase()
                .chars()
                .map(|l| u32::from(l).to_string())
                .collect();
            rust.push(format!(
                "{} {} {}",
                u32::from(c),
                u8::from(c.is_alphanumeric()),
                lower.join(",")
            ));
        }
        let node: std::collections::HashSet<&str> = node.lines().collect();
        let ours: std::collections::HashSet<&str> = rust.iter().map(String::as_str).collect();
        let differ: Vec<&&str> = ours.difference(&node).take(10).collect();
        let only_node: Vec<&&str> = node.difference(&ours).take(10).collect();
        assert!(
            differ.is_empty() && only_node.is_empty(),
            "Rust alone: {differ:?}; Node alone: {only_node:?}"
        );
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
