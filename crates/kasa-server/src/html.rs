//! HTML escaping, for the server's few HTML pages (`/docs/problems`, the approval page).
//! Every dynamic value goes through [`escape`] (or [`push_escaped`]) before it reaches a page,
//! in text or in a double- or single-quoted attribute alike; nothing here builds markup.

/// Appends `text` to `out` with `&`, `<`, `>`, `"` and `'` replaced by entities: safe in an
/// element's text and in a quoted attribute value (not in a script, a style or an unquoted
/// attribute, which the pages never put dynamic values in).
pub fn push_escaped(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

/// `text` escaped as [`push_escaped`] does.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    push_escaped(&mut out, text);
    out
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn markup_and_quotes_become_entities() {
        assert_eq!(escape("<script>alert(\"x\")</script>"), "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;");
        assert_eq!(escape("' onmouseover='x"), "&#39; onmouseover=&#39;x");
        assert_eq!(escape("a & b &amp;"), "a &amp; b &amp;amp;", "an entity is escaped again, not trusted");
        assert_eq!(escape("아메리카노 2잔"), "아메리카노 2잔", "text without markup is unchanged");
    }
}
