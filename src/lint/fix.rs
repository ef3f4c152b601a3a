//! Applying fixes to source text.
//!
//! Fixes are applied all-or-nothing per finding: a fix whose edits overlap
//! an edit already accepted is skipped this round (the caller re-lints and
//! tries again, so a second pass picks it up).

use super::{Finding, FixSafety};

/// The text after applying the fixes of `findings` allowed by `unsafe_fixes`,
/// and how many fixes were applied.
pub fn apply_fixes(text: &str, findings: &[Finding], unsafe_fixes: bool) -> (String, usize) {
    let mut accepted: Vec<(usize, usize, &str)> = Vec::new();
    let mut applied = 0;
    for fix in findings.iter().filter_map(|f| f.fix.as_ref()) {
        if fix.safety == FixSafety::Unsafe && !unsafe_fixes {
            continue;
        }
        let valid = fix.edits.iter().all(|e| {
            e.span.start <= e.span.end
                && e.span.end <= text.len()
                && text.is_char_boundary(e.span.start)
                && text.is_char_boundary(e.span.end)
        });
        let overlaps = fix.edits.iter().any(|e| {
            accepted.iter().any(|&(s, end, _)| {
                // Two insertions at the same point, or ranges that intersect.
                (e.span.start < end && s < e.span.end)
                    || (e.span.start == s && (e.span.is_empty() || s == end))
            })
        });
        if !valid || overlaps || fix.edits.is_empty() {
            continue;
        }
        accepted.extend(
            fix.edits
                .iter()
                .map(|e| (e.span.start, e.span.end, e.replacement.as_str())),
        );
        applied += 1;
    }
    accepted.sort_by_key(|&(s, e, _)| (s, e));
    let mut out = String::with_capacity(text.len());
    let mut pos = 0;
    for (s, e, replacement) in accepted {
        out.push_str(&text[pos..s]);
        out.push_str(replacement);
        pos = e;
    }
    out.push_str(&text[pos..]);
    (out, applied)
}
