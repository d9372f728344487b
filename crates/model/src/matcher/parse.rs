//! Alertmanager 0.25's matcher syntax (`pkg/labels/parse.go`), as used by
//! `matchers:` in alertmanager.yml, silences and the API's `filter`.
//!
//! A list is `{a="b", c=~"d.*"}` or the same without braces; values may be
//! quoted (with `\"`, `\\` and `\n` escapes) or bare; a trailing comma is
//! allowed. Names are `[a-zA-Z_:][a-zA-Z0-9_:]*`. Errors are worded as
//! Alertmanager words them.

use super::{MatchType, Matcher};
use crate::ModelError;

/// Parses a list of matchers, with or without the surrounding braces.
///
/// Commas inside double quotes do not split; an empty last item (trailing
/// comma, or an empty string) is dropped, other empty items are errors.
pub fn parse_matchers(s: &str) -> Result<Vec<Matcher>, ModelError> {
    let s = s.strip_prefix('{').unwrap_or(s);
    let s = s.strip_suffix('}').unwrap_or(s);
    let mut tokens = Vec::new();
    let mut token = String::new();
    let (mut in_quotes, mut escaped) = (false, false);
    for c in s.chars() {
        match c {
            ',' if !in_quotes => {
                tokens.push(std::mem::take(&mut token));
                continue;
            }
            ',' => {}
            '"' => {
                if escaped {
                    escaped = false;
                } else {
                    in_quotes = !in_quotes;
                }
            }
            '\\' => escaped = !escaped,
            _ => escaped = false,
        }
        token.push(c);
    }
    let last = token.trim();
    if !last.is_empty() {
        tokens.push(last.to_string());
    }
    tokens.iter().map(|t| parse_matcher(t)).collect()
}

/// Parses one matcher `name<op>value` (`op` one of `=`, `!=`, `=~`, `!~`),
/// surrounding whitespace allowed.
pub fn parse_matcher(s: &str) -> Result<Matcher, ModelError> {
    let bad = || ModelError::BadMatcher(format!("bad matcher format: {s}"));
    let t = s.trim_start();
    let name_len = t
        .char_indices()
        .find(|&(i, c)| {
            !(c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit()))
        })
        .map_or(t.len(), |(i, _)| i);
    if name_len == 0 {
        return Err(bad());
    }
    let name = &t[..name_len];
    let rest = t[name_len..].trim_start();
    let (kind, rest) = if let Some(r) = rest.strip_prefix("=~") {
        (MatchType::Regex, r)
    } else if let Some(r) = rest.strip_prefix('=') {
        (MatchType::Equal, r)
    } else if let Some(r) = rest.strip_prefix("!=") {
        (MatchType::NotEqual, r)
    } else if let Some(r) = rest.strip_prefix("!~") {
        (MatchType::NotRegex, r)
    } else {
        return Err(bad());
    };
    let raw_full = rest.trim();
    let unescaped_quote = || {
        ModelError::BadMatcher(format!(
            "matcher value contains unescaped double quote: {raw_full}"
        ))
    };
    let (raw, mut expect_quote) = match raw_full.strip_prefix('"') {
        Some(r) => (r, true),
        None => (raw_full, false),
    };
    let mut value = String::with_capacity(raw.len());
    let mut escaped = false;
    for (i, c) in raw.char_indices() {
        let last = i + c.len_utf8() == raw.len();
        if escaped {
            escaped = false;
            match c {
                'n' => value.push('\n'),
                '"' | '\\' => value.push(c),
                _ => {
                    // A spurious escape: the backslash is literal.
                    value.push('\\');
                    value.push(c);
                }
            }
            continue;
        }
        match c {
            '\\' if !last => escaped = true,
            '"' => {
                if !expect_quote || !last {
                    return Err(unescaped_quote());
                }
                expect_quote = false;
            }
            c => value.push(c),
        }
    }
    if expect_quote {
        return Err(unescaped_quote());
    }
    Matcher::new(kind, name, value).map_err(|e| match e {
        ModelError::InvalidRegex { regex, reason } => {
            ModelError::BadMatcher(regex_error_message(&regex, &reason))
        }
        e => e,
    })
}

/// A regex error on one line, worded as Go's start (`error parsing regexp:
/// <what>: `^(?:re)$``); the `what` is the Rust regex crate's.
pub fn regex_error_message(regex: &str, reason: &str) -> String {
    let what = reason
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or(reason)
        .trim();
    let what = what.strip_prefix("error: ").unwrap_or(what);
    format!("error parsing regexp: {what}: `^(?:{regex})$`")
}

/// Quotes `s` as Go's `strconv.Quote` (`%q`) does: `"` and `\` escaped,
/// `\n`, `\t` and the other C escapes, other control characters as `\xNN`
/// or `\uNNNN`; printable Unicode is kept.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(s: &str) -> Result<Vec<String>, String> {
        parse_matchers(s)
            .map(|ms| ms.iter().map(|m| m.to_alertmanager_string()).collect())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn braces_quotes_and_bare_values() {
        assert_eq!(
            show(r#"{a="b", c=~"d.*"}"#).unwrap(),
            [r#"a="b""#, r#"c=~"d.*""#]
        );
        assert_eq!(show("a=b,c!=d").unwrap(), [r#"a="b""#, r#"c!="d""#]);
        assert_eq!(show(" foo !~ bar ").unwrap(), [r#"foo!~"bar""#]);
        assert_eq!(show("a=").unwrap(), [r#"a="""#]);
        assert_eq!(show(r#"a="""#).unwrap(), [r#"a="""#]);
        assert_eq!(show("").unwrap(), Vec::<String>::new());
        assert_eq!(show("{}").unwrap(), Vec::<String>::new());
    }

    #[test]
    fn trailing_comma_and_commas_in_quotes() {
        assert_eq!(show(r#"{a="b",}"#).unwrap(), [r#"a="b""#]);
        assert_eq!(show(r#"a="x,y",b=z"#).unwrap(), [r#"a="x,y""#, r#"b="z""#]);
        assert_eq!(show("a=b,,c=d").unwrap_err(), "bad matcher format: ");
    }

    #[test]
    fn escapes() {
        let m = parse_matcher(r#"a="x\"y\\z\nw""#).unwrap();
        assert_eq!(m.value, "x\"y\\z\nw");
        assert_eq!(m.to_alertmanager_string(), r#"a="x\"y\\z\nw""#);
        // A spurious escape keeps its backslash; a final one is literal.
        assert_eq!(parse_matcher(r#"a="\d""#).unwrap().value, r"\d");
        assert_eq!(parse_matcher(r"a=x\").unwrap().value, r"x\");
    }

    #[test]
    fn unicode() {
        let m = parse_matcher("službа=\"日本語\"");
        assert!(m.is_err(), "non-ASCII names are refused");
        let m = parse_matcher("a=\"日本語\"").unwrap();
        assert_eq!(m.value, "日本語");
        assert_eq!(m.to_alertmanager_string(), "a=\"日本語\"");
    }

    #[test]
    fn errors_are_worded_as_alertmanager() {
        assert_eq!(show("a").unwrap_err(), "bad matcher format: a");
        assert_eq!(show("1a=b").unwrap_err(), "bad matcher format: 1a=b");
        assert_eq!(
            show(r#"a="b"#).unwrap_err(),
            r#"matcher value contains unescaped double quote: "b"#
        );
        assert_eq!(
            show(r#"a=b"c"#).unwrap_err(),
            r#"matcher value contains unescaped double quote: b"c"#
        );
        assert!(show("a=~(")
            .unwrap_err()
            .starts_with("error parsing regexp"));
    }

    #[test]
    fn colons_in_names_and_regex_anchoring() {
        let m = parse_matcher("job:rate=~\"a|b\"").unwrap();
        assert_eq!(m.name, "job:rate");
        assert!(m.matches("a") && !m.matches("ab"));
    }

    #[test]
    fn go_quote_control_characters() {
        assert_eq!(go_quote("a\tb\u{1}"), r#""a\tb\x01""#);
    }
}
