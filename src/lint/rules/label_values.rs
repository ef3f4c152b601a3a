//! Label value validators for the label-schema rules (DL3051–DL3058) and
//! the label collection they share. Not a rule (declares none).

use super::helpers::unquote;
use crate::lint::config::LabelType;
use crate::lint::LintContext;
use crate::syntax::{InstructionKind, KeyValue};

/// Every `LABEL` pair at top level, in order, with its stage index.
pub fn labels(cx: &LintContext<'_>) -> Vec<(Option<usize>, KeyValue)> {
    cx.top_level()
        .filter_map(|r| match r.kind() {
            InstructionKind::Label(pairs) => Some((r.stage, pairs.clone())),
            _ => None,
        })
        .flat_map(|(stage, pairs)| pairs.into_iter().map(move |p| (stage, p)))
        .collect()
}

/// The pairs whose key has type `ty` in the configured schema, with their
/// unquoted value.
pub fn typed_labels(cx: &LintContext<'_>, ty: LabelType) -> Vec<(KeyValue, String)> {
    let schema = &cx.config().label_schema;
    labels(cx)
        .into_iter()
        .filter(|(_, p)| schema.get(unquote(&p.key.text)) == Some(&ty))
        .map(|(_, p)| {
            let value = unquote(&p.value.text).to_owned();
            (p, value)
        })
        .collect()
}

pub fn is_url(v: &str) -> bool {
    let Some((scheme, rest)) = v.split_once(':') else {
        return false;
    };
    let scheme_ok = scheme
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    scheme_ok && !rest.is_empty() && !v.contains(char::is_whitespace)
}

fn digits(s: &str, n: usize) -> bool {
    s.len() == n && s.chars().all(|c| c.is_ascii_digit())
}

/// `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`.
pub fn is_rfc3339(v: &str) -> bool {
    let Some((date, time)) = v.split_once(['T', 't', ' ']) else {
        return false;
    };
    let d: Vec<&str> = date.split('-').collect();
    if d.len() != 3 || !digits(d[0], 4) || !digits(d[1], 2) || !digits(d[2], 2) {
        return false;
    }
    let (clock, zone) = if let Some(c) = time.strip_suffix(['Z', 'z']) {
        (c, None)
    } else if let Some(i) = time.rfind(['+', '-']) {
        (&time[..i], Some(&time[i + 1..]))
    } else {
        return false;
    };
    let clock = clock.split('.').next().unwrap_or("");
    let c: Vec<&str> = clock.split(':').collect();
    let zone_ok = zone.is_none_or(|z| {
        let z: Vec<&str> = z.split(':').collect();
        z.len() == 2 && digits(z[0], 2) && digits(z[1], 2)
    });
    c.len() == 3 && c.iter().all(|p| digits(p, 2)) && zone_ok
}

/// Common SPDX license identifiers; `LicenseRef-…` and expressions with
/// `AND`/`OR`/`WITH` over them are accepted too.
const SPDX_IDS: [&str; 48] = [
    "0BSD",
    "AFL-3.0",
    "AGPL-3.0",
    "AGPL-3.0-only",
    "AGPL-3.0-or-later",
    "Apache-1.1",
    "Apache-2.0",
    "Artistic-2.0",
    "BSD-1-Clause",
    "BSD-2-Clause",
    "BSD-3-Clause",
    "BSD-3-Clause-Clear",
    "BSL-1.0",
    "CC-BY-4.0",
    "CC-BY-SA-4.0",
    "CC0-1.0",
    "CDDL-1.0",
    "EPL-1.0",
    "EPL-2.0",
    "EUPL-1.2",
    "GPL-2.0",
    "GPL-2.0-only",
    "GPL-2.0-or-later",
    "GPL-3.0",
    "GPL-3.0-only",
    "GPL-3.0-or-later",
    "ISC",
    "LGPL-2.1",
    "LGPL-2.1-only",
    "LGPL-2.1-or-later",
    "LGPL-3.0",
    "LGPL-3.0-only",
    "LGPL-3.0-or-later",
    "MIT",
    "MIT-0",
    "MPL-1.1",
    "MPL-2.0",
    "MS-PL",
    "NCSA",
    "OFL-1.1",
    "OpenSSL",
    "PostgreSQL",
    "Python-2.0",
    "Unlicense",
    "UPL-1.0",
    "WTFPL",
    "Zlib",
    "ZPL-2.1",
];

pub fn is_spdx(v: &str) -> bool {
    let tokens: Vec<&str> = v
        .split(|c: char| c.is_whitespace() || c == '(' || c == ')')
        .filter(|t| !t.is_empty())
        .collect();
    !tokens.is_empty()
        && tokens.iter().enumerate().all(|(i, t)| {
            if i % 2 == 1 {
                matches!(*t, "AND" | "OR" | "WITH")
            } else {
                let id = t.trim_end_matches('+');
                SPDX_IDS.iter().any(|s| s.eq_ignore_ascii_case(id))
                    || id.starts_with("LicenseRef-")
                    || (i > 0 && tokens[i - 1] == "WITH")
            }
        })
        && tokens.len() % 2 == 1
}

/// A full (40) or abbreviated (7+) hexadecimal git commit hash.
pub fn is_git_hash(v: &str) -> bool {
    (7..=40).contains(&v.len()) && v.chars().all(|c| c.is_ascii_hexdigit())
}

/// Semantic Versioning 2.0.0.
pub fn is_semver(v: &str) -> bool {
    let (core_pre, build) = match v.split_once('+') {
        Some((c, b)) => (c, Some(b)),
        None => (v, None),
    };
    let (core, pre) = match core_pre.split_once('-') {
        Some((c, p)) => (c, Some(p)),
        None => (core_pre, None),
    };
    let numeric = |p: &str| {
        !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()) && (p == "0" || !p.starts_with('0'))
    };
    let ident = |p: &str| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3
        && parts.iter().all(|p| numeric(p))
        && pre.is_none_or(|p| {
            p.split('.')
                .all(|i| ident(i) && (!i.chars().all(|c| c.is_ascii_digit()) || numeric(i)))
        })
        && build.is_none_or(|b| b.split('.').all(ident))
}

/// `local@domain.tld` without spaces.
pub fn is_email(v: &str) -> bool {
    let Some((local, domain)) = v.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !v.contains(char::is_whitespace)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validators_accept_good_and_reject_bad_values() {
        assert!(is_url("https://x.io/a") && !is_url("notaurl") && !is_url("http:"));
        assert!(is_rfc3339("2024-01-01T00:00:00Z") && is_rfc3339("2024-01-01T00:00:00.5+02:00"));
        assert!(!is_rfc3339("yesterday") && !is_rfc3339("2024-01-01"));
        assert!(
            is_spdx("MIT")
                && is_spdx("Apache-2.0 OR MIT")
                && !is_spdx("NOPE")
                && !is_spdx("MIT OR")
        );
        assert!(is_git_hash("0123456789abcdef0123456789abcdef01234567") && !is_git_hash("xyz"));
        assert!(
            is_semver("1.2.3")
                && is_semver("1.0.0-rc.1+build.5")
                && !is_semver("1.x")
                && !is_semver("01.2.3")
        );
        assert!(is_email("a@b.co") && !is_email("bad") && !is_email("a@b"));
    }
}
