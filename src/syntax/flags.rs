//! Instruction flags: which flags each instruction accepts, and typed views
//! of their values (RUN `--mount`, COPY/ADD options, HEALTHCHECK durations).
//!
//! The typed parsers work on the flag value as written. Values may contain
//! `$VAR` references that only the builder can expand, so checks that need a
//! concrete value (octal modes, numbers) are skipped when a `$` is present;
//! the builder calls the same functions again after expansion.

use std::time::Duration;

use nom::{
    branch::alt,
    bytes::complete::tag,
    character::complete::digit1,
    combinator::{opt, recognize},
    multi::many1,
    sequence::pair,
    IResult, Parser,
};
use serde::Serialize;

use super::ast::{Flag, Keyword, Word};
use super::span::Span;

/// How a flag takes its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagKind {
    /// `--link` or `--link=false`.
    Bool,
    /// `--from=x`, once.
    String,
    /// `--mount=…`, repeatable.
    List,
}

/// The flags an instruction accepts (BuildKit's `instructions` package).
pub fn allowed_flags(keyword: Keyword) -> &'static [(&'static str, FlagKind)] {
    use FlagKind::{Bool, List, String};
    match keyword {
        Keyword::From => &[("platform", String)],
        Keyword::Run => &[("mount", List), ("network", String), ("security", String)],
        Keyword::Copy => &[
            ("from", String),
            ("chown", String),
            ("chmod", String),
            ("link", Bool),
            ("parents", Bool),
            ("exclude", List),
        ],
        Keyword::Add => &[
            ("chown", String),
            ("chmod", String),
            ("link", Bool),
            ("parents", Bool),
            ("exclude", List),
            ("checksum", String),
            ("keep-git-dir", Bool),
            ("unpack", Bool),
        ],
        Keyword::Healthcheck => &[
            ("interval", String),
            ("timeout", String),
            ("start-period", String),
            ("start-interval", String),
            ("retries", String),
        ],
        _ => &[],
    }
}

/// A problem with one flag, with the span to underline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagError {
    pub message: String,
    pub span: Span,
    pub help: Option<String>,
}

impl FlagError {
    fn new(message: impl Into<String>, span: Span) -> Self {
        Self {
            message: message.into(),
            span,
            help: None,
        }
    }
}

/// Checks names, duplicates and value presence against [`allowed_flags`].
pub fn validate_flags(keyword: Keyword, flags: &[Flag]) -> Vec<FlagError> {
    let allowed = allowed_flags(keyword);
    let mut errors = Vec::new();
    for (i, flag) in flags.iter().enumerate() {
        let Some(&(_, kind)) = allowed.iter().find(|(n, _)| *n == flag.name) else {
            let mut err = FlagError::new(
                format!("unknown flag `--{}` for {keyword}", flag.name),
                flag.name_span,
            );
            err.help = Some(if allowed.is_empty() {
                format!("{keyword} takes no flags")
            } else {
                let names: Vec<String> = allowed.iter().map(|(n, _)| format!("--{n}")).collect();
                match crate::syntax::suggest::closest(&flag.name, allowed.iter().map(|(n, _)| *n)) {
                    Some(s) => format!(
                        "did you mean `--{s}`? {keyword} accepts {}",
                        names.join(", ")
                    ),
                    None => format!("{keyword} accepts {}", names.join(", ")),
                }
            });
            errors.push(err);
            continue;
        };
        match kind {
            FlagKind::Bool => {
                if let Some(v) = &flag.value {
                    if !matches!(v.to_ascii_lowercase().as_str(), "true" | "false" | "") {
                        errors.push(FlagError::new(
                            format!(
                                "expecting boolean value for flag `--{}`, not `{v}`",
                                flag.name
                            ),
                            flag.value_span.unwrap_or(flag.span),
                        ));
                    }
                }
            }
            FlagKind::String | FlagKind::List => {
                if flag.value.is_none() {
                    errors.push(FlagError::new(
                        format!("missing a value on flag `--{}`", flag.name),
                        flag.span,
                    ));
                }
            }
        }
        if kind != FlagKind::List && flags[..i].iter().any(|f| f.name == flag.name) {
            errors.push(FlagError::new(
                format!("duplicate flag specified: `--{}`", flag.name),
                flag.span,
            ));
        }
    }
    errors
}

fn flag_word(flag: &Flag) -> Option<Word> {
    flag.value.as_ref().map(|v| Word {
        text: v.clone(),
        span: flag.value_span.unwrap_or(flag.span),
    })
}

fn flag_bool(flag: &Flag) -> bool {
    flag.value
        .as_deref()
        .is_none_or(|v| v.is_empty() || v.eq_ignore_ascii_case("true"))
}

/// COPY and ADD options.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CopyFlags {
    pub from: Option<Word>,
    pub chown: Option<Word>,
    pub chmod: Option<Word>,
    pub link: bool,
    pub parents: bool,
    pub exclude: Vec<Word>,
    pub checksum: Option<Word>,
    pub keep_git_dir: bool,
    /// `--unpack` given explicitly (ADD); `None` means the default behaviour.
    pub unpack: Option<bool>,
}

impl CopyFlags {
    pub fn from_flags(flags: &[Flag]) -> (CopyFlags, Vec<FlagError>) {
        let mut out = CopyFlags::default();
        let mut errors = Vec::new();
        for flag in flags {
            match flag.name.as_str() {
                "from" => out.from = flag_word(flag),
                "chown" => out.chown = flag_word(flag),
                "chmod" => {
                    out.chmod = flag_word(flag);
                    if let Some(w) = &out.chmod {
                        if let Err(message) = check_chmod(&w.text) {
                            errors.push(FlagError::new(message, w.span));
                        }
                    }
                }
                "link" => out.link = flag_bool(flag),
                "parents" => out.parents = flag_bool(flag),
                "exclude" => out.exclude.extend(flag_word(flag)),
                "checksum" => out.checksum = flag_word(flag),
                "keep-git-dir" => out.keep_git_dir = flag_bool(flag),
                "unpack" => out.unpack = Some(flag_bool(flag)),
                _ => {}
            }
        }
        (out, errors)
    }
}

/// `--chmod` takes an octal mode or a symbolic mode (`u+x,go=r`).
pub fn check_chmod(value: &str) -> Result<(), String> {
    if value.contains('$') || value.is_empty() {
        return Ok(());
    }
    if value.bytes().all(|b| b.is_ascii_digit()) {
        return match u32::from_str_radix(value, 8) {
            Ok(m) if m <= 0o7777 => Ok(()),
            _ => Err(format!("invalid octal mode `{value}` for --chmod")),
        };
    }
    for clause in value.split(',') {
        let ops = clause.trim_start_matches(['u', 'g', 'o', 'a']);
        let mut chars = ops.chars().peekable();
        let mut saw_op = false;
        while let Some(c) = chars.next() {
            if !matches!(c, '+' | '-' | '=') {
                return Err(format!("invalid symbolic mode `{value}` for --chmod"));
            }
            saw_op = true;
            // Either letters from rwxXst, or one of ugo standing alone.
            if chars.next_if(|c| matches!(c, 'u' | 'g' | 'o')).is_some() {
                continue;
            }
            while chars
                .next_if(|c| matches!(c, 'r' | 'w' | 'x' | 'X' | 's' | 't'))
                .is_some()
            {}
        }
        if !saw_op {
            return Err(format!("invalid symbolic mode `{value}` for --chmod"));
        }
    }
    Ok(())
}

/// RUN options.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RunFlags {
    pub mounts: Vec<Mount>,
    /// `default`, `none` or `host`.
    pub network: Option<Word>,
    /// `sandbox` or `insecure`.
    pub security: Option<Word>,
}

impl RunFlags {
    pub fn from_flags(flags: &[Flag]) -> (RunFlags, Vec<FlagError>) {
        let mut out = RunFlags::default();
        let mut errors = Vec::new();
        for flag in flags {
            match flag.name.as_str() {
                "mount" => {
                    let Some(word) = flag_word(flag) else {
                        continue;
                    };
                    match parse_mount(&word.text) {
                        Ok(mut mount) => {
                            mount.span = word.span;
                            for opt in &mut mount.options {
                                opt.span = offset_span(word.span, opt.span, &word.text);
                            }
                            out.mounts.push(mount);
                        }
                        Err(e) => {
                            let span = offset_span(word.span, e.span, &word.text);
                            errors.push(FlagError {
                                message: e.message,
                                span,
                                help: e.help,
                            });
                        }
                    }
                }
                "network" => {
                    out.network = flag_word(flag);
                    if let Some(w) = &out.network {
                        if !w.text.contains('$')
                            && !matches!(w.text.as_str(), "default" | "none" | "host")
                        {
                            errors.push(FlagError {
                                message: format!("unsupported network mode `{}`", w.text),
                                span: w.span,
                                help: Some("use one of: default, none, host".into()),
                            });
                        }
                    }
                }
                "security" => {
                    out.security = flag_word(flag);
                    if let Some(w) = &out.security {
                        if !w.text.contains('$')
                            && !matches!(w.text.as_str(), "sandbox" | "insecure")
                        {
                            errors.push(FlagError {
                                message: format!("unsupported security mode `{}`", w.text),
                                span: w.span,
                                help: Some("use one of: sandbox, insecure".into()),
                            });
                        }
                    }
                }
                _ => {}
            }
        }
        (out, errors)
    }
}

/// Turns a span relative to `value` into a source span inside `outer` when the
/// value was written verbatim (no quotes removed); otherwise the whole value.
fn offset_span(outer: Span, inner: Span, value: &str) -> Span {
    if outer.len() == value.len() && inner.end <= value.len() {
        Span::new(outer.start + inner.start, outer.start + inner.end)
    } else {
        outer
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MountType {
    Bind,
    Cache,
    Tmpfs,
    Secret,
    Ssh,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Sharing {
    Shared,
    Private,
    Locked,
}

/// One `key[=value]` field of a `--mount` value; spans are relative to the value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MountOption {
    pub key: String,
    pub value: Option<String>,
    pub span: Span,
}

/// A parsed `RUN --mount=…`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mount {
    pub kind: MountType,
    pub target: Option<String>,
    pub source: Option<String>,
    pub from: Option<String>,
    pub id: Option<String>,
    pub sharing: Sharing,
    pub readonly: bool,
    pub required: bool,
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// tmpfs size in bytes.
    pub size: Option<u64>,
    /// Secret exposed as an environment variable.
    pub env: Option<String>,
    pub options: Vec<MountOption>,
    /// Source span of the whole value (set by the caller).
    pub span: Span,
}

impl Mount {
    /// Where the mount appears in the container: the explicit target, or the
    /// default for secrets (`/run/secrets/<id>`) and ssh (`/run/buildkit/ssh_agent.N`).
    pub fn effective_target(&self) -> Option<String> {
        if let Some(t) = &self.target {
            return Some(t.clone());
        }
        match self.kind {
            MountType::Secret if self.env.is_none() => {
                let id = self.id.clone().or_else(|| {
                    self.source
                        .as_deref()
                        .map(|s| s.rsplit('/').next().unwrap_or(s).to_string())
                })?;
                Some(format!("/run/secrets/{id}"))
            }
            MountType::Ssh => Some("/run/buildkit/ssh_agent.0".to_string()),
            _ => None,
        }
    }
}

/// Splits a `--mount` value into CSV fields (double quotes group, `""` escapes a quote).
fn csv_fields(value: &str) -> Result<Vec<(String, Span)>, FlagError> {
    let mut fields = Vec::new();
    let bytes = value.as_bytes();
    let mut i = 0;
    loop {
        let start = i;
        let mut field = String::new();
        if bytes.get(i) == Some(&b'"') {
            i += 1;
            loop {
                match value[i..].find('"') {
                    None => {
                        return Err(FlagError::new(
                            "unterminated quote in --mount value",
                            Span::new(start, value.len()),
                        ))
                    }
                    Some(q) => {
                        field.push_str(&value[i..i + q]);
                        i += q + 1;
                        if bytes.get(i) == Some(&b'"') {
                            field.push('"');
                            i += 1;
                        } else {
                            break;
                        }
                    }
                }
            }
            let rest_end = value[i..].find(',').map_or(value.len(), |c| i + c);
            field.push_str(&value[i..rest_end]);
            i = rest_end;
        } else {
            let end = value[i..].find(',').map_or(value.len(), |c| i + c);
            field.push_str(&value[i..end]);
            i = end;
        }
        fields.push((field, Span::new(start, i)));
        if i >= value.len() {
            break;
        }
        i += 1; // the comma
    }
    Ok(fields)
}

fn parse_bool_option(key: &str, value: Option<&str>, span: Span) -> Result<bool, FlagError> {
    match value.map(str::to_ascii_lowercase).as_deref() {
        None | Some("true" | "1" | "") => Ok(true),
        Some("false" | "0") => Ok(false),
        Some(v) => Err(FlagError::new(
            format!("invalid value `{v}` for boolean mount option `{key}`"),
            span,
        )),
    }
}

fn parse_number(key: &str, value: &str, radix: u32, span: Span) -> Result<Option<u32>, FlagError> {
    if value.contains('$') {
        return Ok(None);
    }
    u32::from_str_radix(value, radix).map(Some).map_err(|_| {
        FlagError::new(
            format!("invalid value `{value}` for mount option `{key}`"),
            span,
        )
    })
}

/// Parses a `--mount` value (`type=cache,target=/root/.cache,sharing=locked`).
/// Spans in the result and in errors are relative to `value`.
pub fn parse_mount(value: &str) -> Result<Mount, FlagError> {
    let mut mount = Mount {
        kind: MountType::Bind,
        target: None,
        source: None,
        from: None,
        id: None,
        sharing: Sharing::Shared,
        readonly: false,
        required: false,
        mode: None,
        uid: None,
        gid: None,
        size: None,
        env: None,
        options: Vec::new(),
        span: Span::new(0, value.len()),
    };
    let mut rw_explicit = None;
    for (field, span) in csv_fields(value)? {
        if field.is_empty() {
            continue;
        }
        let (key, val) = match field.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v.to_string())),
            None => (field.trim().to_ascii_lowercase(), None),
        };
        let needs_value = |v: &Option<String>| -> Result<String, FlagError> {
            v.clone().ok_or_else(|| {
                FlagError::new(
                    format!("invalid field `{field}`: must be a key=value pair"),
                    span,
                )
            })
        };
        match key.as_str() {
            "type" => {
                let v = needs_value(&val)?;
                mount.kind = match v.to_ascii_lowercase().as_str() {
                    "bind" => MountType::Bind,
                    "cache" => MountType::Cache,
                    "tmpfs" => MountType::Tmpfs,
                    "secret" => MountType::Secret,
                    "ssh" => MountType::Ssh,
                    _ => {
                        return Err(FlagError {
                            message: format!("unsupported mount type `{v}`"),
                            span,
                            help: Some("use one of: bind, cache, tmpfs, secret, ssh".into()),
                        })
                    }
                };
            }
            "target" | "dst" | "destination" => mount.target = Some(needs_value(&val)?),
            "source" | "src" => mount.source = Some(needs_value(&val)?),
            "from" => mount.from = Some(needs_value(&val)?),
            "id" => mount.id = Some(needs_value(&val)?),
            "env" => mount.env = Some(needs_value(&val)?),
            "readonly" | "ro" => {
                rw_explicit = Some(!parse_bool_option(&key, val.as_deref(), span)?);
            }
            "readwrite" | "rw" => {
                rw_explicit = Some(parse_bool_option(&key, val.as_deref(), span)?);
            }
            "required" => mount.required = parse_bool_option(&key, val.as_deref(), span)?,
            "sharing" => {
                let v = needs_value(&val)?;
                mount.sharing = match v.to_ascii_lowercase().as_str() {
                    "shared" => Sharing::Shared,
                    "private" => Sharing::Private,
                    "locked" => Sharing::Locked,
                    _ if v.contains('$') => Sharing::Shared,
                    _ => {
                        return Err(FlagError {
                            message: format!("unsupported sharing value `{v}`"),
                            span,
                            help: Some("use one of: shared, private, locked".into()),
                        })
                    }
                };
            }
            "mode" => mount.mode = parse_number(&key, &needs_value(&val)?, 8, span)?,
            "uid" => mount.uid = parse_number(&key, &needs_value(&val)?, 10, span)?,
            "gid" => mount.gid = parse_number(&key, &needs_value(&val)?, 10, span)?,
            "size" => {
                let v = needs_value(&val)?;
                if !v.contains('$') {
                    mount.size = Some(parse_size(&v).ok_or_else(|| {
                        FlagError::new(format!("invalid size `{v}` for tmpfs mount"), span)
                    })?);
                }
            }
            _ => {
                return Err(FlagError {
                    message: format!("unexpected key `{key}` in `{field}`"),
                    span,
                    help: crate::syntax::suggest::closest(
                        &key,
                        [
                            "type", "target", "source", "from", "id", "env", "readonly", "rw",
                            "required", "sharing", "mode", "uid", "gid", "size",
                        ],
                    )
                    .map(|s| format!("did you mean `{s}`?")),
                })
            }
        }
        mount.options.push(MountOption {
            key,
            value: val,
            span,
        });
    }
    // Cache and tmpfs mounts are writable unless `ro`; the others read-only unless `rw`.
    mount.readonly = match rw_explicit {
        Some(rw) => !rw,
        None => !matches!(mount.kind, MountType::Cache | MountType::Tmpfs),
    };
    let whole = Span::new(0, value.len());
    let type_name = match mount.kind {
        MountType::Bind => "bind",
        MountType::Cache => "cache",
        MountType::Tmpfs => "tmpfs",
        MountType::Secret => "secret",
        MountType::Ssh => "ssh",
    };
    let option_span = |key: &str| {
        mount
            .options
            .iter()
            .find(|o| o.key == key)
            .map_or(whole, |o| o.span)
    };
    let file_info_allowed = matches!(
        mount.kind,
        MountType::Secret | MountType::Ssh | MountType::Cache
    );
    for key in ["mode", "uid", "gid"] {
        if !file_info_allowed && mount.options.iter().any(|o| o.key == key) {
            return Err(FlagError::new(
                format!("{key} is not allowed for {type_name} mounts"),
                option_span(key),
            ));
        }
    }
    if mount.required && !matches!(mount.kind, MountType::Secret | MountType::Ssh) {
        return Err(FlagError::new(
            format!("unexpected key `required` for mount type {type_name}"),
            option_span("required"),
        ));
    }
    if mount.options.iter().any(|o| o.key == "size") && mount.kind != MountType::Tmpfs {
        return Err(FlagError::new(
            format!("unexpected key `size` for mount type {type_name}"),
            option_span("size"),
        ));
    }
    if mount.options.iter().any(|o| o.key == "sharing") && mount.kind != MountType::Cache {
        return Err(FlagError::new(
            format!("invalid cache sharing set for {type_name} mount"),
            option_span("sharing"),
        ));
    }
    if let Some(from) = &mount.from {
        if from.find('$').is_some_and(|i| i + 1 != from.len()) {
            return Err(FlagError {
                message: "`from` doesn't support variable expansion".into(),
                span: option_span("from"),
                help: Some("define an alias stage (FROM ${VAR} AS name) and mount from it".into()),
            });
        }
    }
    if mount.kind == MountType::Secret {
        if mount.from.is_some() {
            return Err(FlagError::new(
                "secret mount should not have a from",
                option_span("from"),
            ));
        }
        if mount.source.is_none() && mount.target.is_none() && mount.id.is_none() {
            return Err(FlagError {
                message: "invalid secret mount: one of id, source or target is required".into(),
                span: whole,
                help: Some("e.g. --mount=type=secret,id=npmrc".into()),
            });
        }
        if mount.source.is_some() && mount.id.is_some() {
            return Err(FlagError::new(
                "both source and id can't be set on a secret mount",
                whole,
            ));
        }
    }
    Ok(mount)
}

/// `64m`, `1g`, `1024` (bytes) as tmpfs accepts them.
fn parse_size(v: &str) -> Option<u64> {
    let v = v.trim();
    let split = v
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let n: f64 = num.parse().ok()?;
    let mult: f64 = match unit.to_ascii_lowercase().trim_end_matches(['b', 'i']) {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    let bytes = n * mult;
    (0.0..1.8e19).contains(&bytes).then_some(bytes as u64)
}

/// HEALTHCHECK options.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct HealthcheckFlags {
    pub interval: Option<Duration>,
    pub timeout: Option<Duration>,
    pub start_period: Option<Duration>,
    pub start_interval: Option<Duration>,
    pub retries: Option<u32>,
}

impl HealthcheckFlags {
    pub fn from_flags(flags: &[Flag]) -> (HealthcheckFlags, Vec<FlagError>) {
        let mut out = HealthcheckFlags::default();
        let mut errors = Vec::new();
        for flag in flags {
            let Some(word) = flag_word(flag) else {
                continue;
            };
            if word.text.contains('$') {
                continue;
            }
            let slot = match flag.name.as_str() {
                "interval" => &mut out.interval,
                "timeout" => &mut out.timeout,
                "start-period" => &mut out.start_period,
                "start-interval" => &mut out.start_interval,
                "retries" => {
                    match word.text.parse::<i64>() {
                        Ok(n) if n >= 0 => out.retries = u32::try_from(n).ok(),
                        Ok(_) => {
                            errors.push(FlagError::new("--retries cannot be negative", word.span))
                        }
                        Err(_) => errors.push(FlagError::new(
                            format!("invalid --retries value `{}`: not an integer", word.text),
                            word.span,
                        )),
                    }
                    continue;
                }
                _ => continue,
            };
            match parse_go_duration(&word.text) {
                Some(d) if d.is_zero() || d >= Duration::from_millis(1) => *slot = Some(d),
                Some(_) => errors.push(FlagError::new(
                    format!("--{} cannot be less than 1ms", flag.name),
                    word.span,
                )),
                None => errors.push(FlagError {
                    message: format!("invalid duration `{}` for --{}", word.text, flag.name),
                    span: word.span,
                    help: Some("durations look like 30s, 1m30s, 500ms or 1h".into()),
                }),
            }
        }
        (out, errors)
    }
}

fn duration_unit(input: &str) -> IResult<&str, &str> {
    alt((
        tag("ns"),
        tag("us"),
        tag("µs"),
        tag("μs"),
        tag("ms"),
        tag("s"),
        tag("m"),
        tag("h"),
    ))
    .parse(input)
}

fn duration_part(input: &str) -> IResult<&str, (&str, &str)> {
    pair(
        recognize(pair(digit1, opt(pair(tag("."), opt(digit1))))),
        duration_unit,
    )
    .parse(input)
}

/// Go's `time.ParseDuration` format without a sign: `1h2m3.5s`, `300ms`, `0`.
pub fn parse_go_duration(input: &str) -> Option<Duration> {
    if input == "0" {
        return Some(Duration::ZERO);
    }
    let (rest, parts) = many1(duration_part).parse(input).ok()?;
    if !rest.is_empty() {
        return None;
    }
    let mut total = 0f64;
    for (number, unit) in parts {
        let n: f64 = number.parse().ok()?;
        let scale = match unit {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            _ => 3600.0,
        };
        total += n * scale;
    }
    Duration::try_from_secs_f64(total).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_parse_like_time_parse_duration() {
        assert_eq!(parse_go_duration("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parse_go_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_go_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_go_duration("1.5h"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_go_duration("0"), Some(Duration::ZERO));
        assert_eq!(parse_go_duration("30"), None);
        assert_eq!(parse_go_duration("s"), None);
        assert_eq!(parse_go_duration("1x"), None);
        assert_eq!(parse_go_duration(""), None);
    }

    #[test]
    fn cache_mount_with_all_options() {
        let m = parse_mount(
            "type=cache,target=/root/.cache,id=pip,sharing=locked,mode=0755,uid=1000,gid=1000",
        )
        .unwrap();
        assert_eq!(m.kind, MountType::Cache);
        assert_eq!(m.target.as_deref(), Some("/root/.cache"));
        assert_eq!(m.id.as_deref(), Some("pip"));
        assert_eq!(m.sharing, Sharing::Locked);
        assert_eq!(m.mode, Some(0o755));
        assert_eq!(m.uid, Some(1000));
        assert!(!m.readonly);
    }

    #[test]
    fn bind_mount_is_readonly_unless_rw() {
        assert!(parse_mount("target=/src").unwrap().readonly);
        assert!(!parse_mount("type=bind,target=/src,rw").unwrap().readonly);
        assert!(parse_mount("type=cache,target=/c,ro").unwrap().readonly);
        assert!(!parse_mount("type=cache,target=/c").unwrap().readonly);
        // As BuildKit: a bind mount without a target is accepted by the parser.
        assert!(parse_mount("from=binaries").is_ok());
    }

    #[test]
    fn secret_mount_needs_no_target() {
        let m = parse_mount("type=secret,id=npmrc").unwrap();
        assert_eq!(m.effective_target().as_deref(), Some("/run/secrets/npmrc"));
        let m = parse_mount("type=secret,id=tok,env=TOKEN").unwrap();
        assert_eq!(m.effective_target(), None);
        let m = parse_mount("type=ssh").unwrap();
        assert!(m.effective_target().is_some());
    }

    #[test]
    fn mount_errors_point_at_the_field() {
        let e = parse_mount("type=cache,target=/x,sharin=locked").unwrap_err();
        assert_eq!(e.span, Span::new(21, 34));
        assert_eq!(e.help.as_deref(), Some("did you mean `sharing`?"));
        let e = parse_mount("type=volume,target=/x").unwrap_err();
        assert_eq!(e.span, Span::new(0, 11));
        assert!(parse_mount("type=secret").is_err());
        assert!(parse_mount("type=bind,target=/x,mode=0644").is_err());
        assert!(parse_mount("type=cache,target=/x,required").is_err());
        assert!(parse_mount("type=bind,target=/x,from=$STAGE").is_err());
        assert!(parse_mount("type=cache,target=/x,mode=999").is_err());
        assert!(parse_mount("type=tmpfs,target=/x,size=64m").unwrap().size == Some(64 << 20));
    }

    #[test]
    fn mount_values_with_variables_are_not_checked_early() {
        let m = parse_mount("type=cache,target=/x,mode=$MODE,uid=${UID}").unwrap();
        assert_eq!(m.mode, None);
        assert_eq!(m.uid, None);
    }

    #[test]
    fn quoted_csv_fields() {
        let m = parse_mount(r#"type=bind,"source=a,b",target=/x"#).unwrap();
        assert_eq!(m.source.as_deref(), Some("a,b"));
        assert!(parse_mount(r#"type=bind,"source=a,target=/x"#).is_err());
    }

    #[test]
    fn chmod_accepts_octal_and_symbolic() {
        assert!(check_chmod("755").is_ok());
        assert!(check_chmod("0644").is_ok());
        assert!(check_chmod("u+x,go=r").is_ok());
        assert!(check_chmod("a-w").is_ok());
        assert!(check_chmod("999").is_err());
        assert!(check_chmod("rwx").is_err());
        assert!(check_chmod("u+ug").is_err());
        assert!(check_chmod("g=u,a+X").is_ok());
        assert!(check_chmod("$MODE").is_ok());
    }
}
