//! Operator actions. The CLI runs them directly on a data folder, or, when a portal is running
//! on that folder (sled allows one process), sends them over the control socket to be run here
//! by the server. Either way the same code does the work.

use serde::{Deserialize, Serialize};

use crate::audit::{Audit, AuditKind};
use crate::auth;
use crate::error::{Error, Result};
use crate::hooks::{ImportEvent, SettingChangeEvent};
use crate::import;
use crate::model::Client;
use crate::portal::Portal;
use crate::settings::Scope;
use crate::text::escape;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum OpRequest {
    SettingsList,
    SettingsGet {
        key: String,
        group: Option<u64>,
    },
    SettingsSet {
        key: String,
        group: Option<u64>,
        value: String,
    },
    SettingsUnset {
        key: String,
        group: Option<u64>,
    },
    Import {
        json: String,
        /// Each collection present in the bundle becomes exactly the bundle's content.
        #[serde(default)]
        sync: bool,
        /// Check and count only; change nothing.
        #[serde(default)]
        dry_run: bool,
    },
    SetPassword {
        client: String,
        password: String,
    },
    Maintenance {
        on: bool,
    },
    /// `portico suspend --message TEXT`.
    Suspend {
        message: String,
    },
    /// `portico resume`.
    Resume,
    MenuAdd {
        button: crate::menu::NewButton,
    },
    MenuList,
    MenuRemove {
        id: u64,
    },
    FilesAdd {
        file: crate::files::NewFile,
    },
    FilesList,
    FilesRemove {
        id: u64,
    },
    /// `portico changes list`: clients' data changes waiting for approval.
    ChangesList,
    /// `portico changes approve ID`.
    ChangesApprove {
        id: u64,
    },
    /// `portico changes reject ID [--reason TEXT]`.
    ChangesReject {
        id: u64,
        #[serde(default)]
        reason: Option<String>,
    },
    OneTimePassword {
        client: String,
    },
    SendPasswordEmail {
        client: String,
    },
    MailQueue,
    MailTemplateSet {
        purpose: String,
        group: Option<u64>,
        subject: String,
        body: String,
    },
    MailTemplateUnset {
        purpose: String,
        group: Option<u64>,
    },
    MailTemplateList,
    Audit {
        client: Option<String>,
        limit: usize,
        /// Only events older than this event id (the "older events" hint of the last page).
        #[serde(default)]
        before: Option<u64>,
        /// Only events of this kind (`LoginOk` or `login_ok`).
        #[serde(default)]
        kind: Option<String>,
        /// Only events from this date or time on (UTC).
        #[serde(default)]
        since: Option<String>,
        /// Only events up to this date (the whole day) or before this time (UTC).
        #[serde(default)]
        until: Option<String>,
    },
    /// Send an outbox mail again now (a failed one gets a fresh round of attempts).
    MailRetry {
        id: u64,
    },
    /// Take a mail out of the outbox unsent.
    MailCancel {
        id: u64,
    },
    /// Delete mail given up after its retries.
    MailPurge {
        failed: bool,
        #[serde(default)]
        older_than_days: Option<u32>,
    },
    PluginsList,
    Hooks,
    /// `portico scripts status`.
    ScriptsStatus,
    /// `portico scripts check FILE`: compiles `source` (the file's text) without loading it.
    ScriptsCheck {
        file: String,
        source: String,
    },
    ThemeStatus,
    /// `portico <command> ARGS...` of a plugin; `args[0]` is the command.
    PluginCommand {
        args: Vec<String>,
        /// The folder the operator ran `portico` in (relative paths in `args` are from there).
        #[serde(default)]
        cwd: Option<String>,
    },
    /// `portico backup FILE`: the portal writes a snapshot of its store to FILE (an absolute
    /// path; the portal runs as the operator's user, the control socket makes sure of that).
    Backup {
        path: String,
    },
    ClientDisable {
        client: String,
        #[serde(default)]
        reason: Option<String>,
    },
    ClientEnable {
        client: String,
    },
    ClientList {
        #[serde(default)]
        group: Option<u64>,
        #[serde(default)]
        search: Option<String>,
        #[serde(default)]
        locked: bool,
        #[serde(default)]
        disabled: bool,
        limit: usize,
    },
    ClientShow {
        client: String,
    },
    ClientUnlock {
        client: String,
    },
    ClientSessions {
        client: String,
        #[serde(default)]
        end: bool,
    },
}

/// What the operator is shown.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OpReply {
    pub ok: bool,
    pub text: String,
}

/// Longest suspension message, in characters.
pub const MAX_SUSPEND_MESSAGE: usize = 2000;

/// The OS user behind an operator command: the user running `portico` (directly on the data
/// folder), or the peer of the control socket (SO_PEERCRED).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operator(pub String);

impl Operator {
    /// The user with this uid, by name when the system knows one (`uid 1000` otherwise).
    pub fn from_uid(uid: u32) -> Operator {
        Operator(user_name(uid).unwrap_or_else(|| format!("uid {uid}")))
    }

    /// The user running this process.
    pub fn current() -> Operator {
        Operator::from_uid(rustix::process::getuid().as_raw())
    }
}

impl std::fmt::Display for Operator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A user's name from /etc/passwd (where the system keeps local users; a user known only to a
/// directory service is shown by uid).
fn user_name(uid: u32) -> Option<String> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let mut f = line.split(':');
        let name = f.next()?;
        let _password = f.next()?;
        (f.next()?.parse::<u32>().ok()? == uid && !name.is_empty()).then(|| name.to_string())
    })
}

/// How a command reaches the audit log.
enum Audited {
    /// It changes nothing.
    No,
    /// It records its own events (with the client they concern) when it changes something.
    Own,
    /// The dispatch records one event of this kind, with the command's summary.
    As(AuditKind),
}

impl OpRequest {
    /// Whether and how the command is audited. Every command is named here without a catch-all,
    /// so a new command does not compile until it says.
    fn audited(&self) -> Audited {
        use OpRequest as R;
        match self {
            R::SettingsList
            | R::SettingsGet { .. }
            | R::MailQueue
            | R::MailTemplateList
            | R::Audit { .. }
            | R::PluginsList
            | R::Hooks
            | R::ThemeStatus
            | R::ScriptsStatus
            | R::ScriptsCheck { .. }
            | R::ClientList { .. }
            | R::ClientShow { .. }
            | R::ClientSessions { end: false, .. }
            | R::MenuList
            | R::FilesList
            | R::ChangesList
            | R::Import { dry_run: true, .. } => Audited::No,
            R::SetPassword { .. }
            | R::OneTimePassword { .. }
            | R::SendPasswordEmail { .. }
            | R::ClientDisable { .. }
            | R::ClientEnable { .. }
            | R::ClientUnlock { .. }
            | R::ClientSessions { end: true, .. }
            | R::ChangesApprove { .. }
            | R::ChangesReject { .. } => Audited::Own,
            R::Import { .. } => Audited::As(AuditKind::Import),
            R::SettingsSet { .. } | R::SettingsUnset { .. } => {
                Audited::As(AuditKind::SettingChanged)
            }
            R::Maintenance { .. } => Audited::As(AuditKind::Maintenance),
            R::Suspend { .. } | R::Resume => Audited::As(AuditKind::Suspension),
            R::MenuAdd { .. } | R::MenuRemove { .. } => Audited::As(AuditKind::MenuChanged),
            R::FilesAdd { .. } | R::FilesRemove { .. } => Audited::As(AuditKind::FilesChanged),
            R::MailTemplateSet { .. } | R::MailTemplateUnset { .. } => {
                Audited::As(AuditKind::MailTemplateChanged)
            }
            R::MailRetry { .. } => Audited::As(AuditKind::MailRetry),
            R::MailCancel { .. } => Audited::As(AuditKind::MailCancel),
            R::MailPurge { .. } => Audited::As(AuditKind::MailPurge),
            // A plugin's command may change its data; core cannot tell, so each one is recorded.
            R::PluginCommand { .. } => Audited::As(AuditKind::PluginCommand),
            // Not a change, but every record of every client leaves the portal with it.
            R::Backup { .. } => Audited::As(AuditKind::Backup),
        }
    }

    /// The command as the log names it: `settings set ci_url`, `client disable 1001`. Never a
    /// value that could be a secret (a password, a bundle).
    pub fn describe(&self) -> String {
        use OpRequest as R;
        let group = |g: &Option<u64>| g.map(|g| format!(" --group {g}")).unwrap_or_default();
        let text = match self {
            R::SettingsList => "settings list".into(),
            R::SettingsGet { key, group: g } => format!("settings get {key}{}", group(g)),
            R::SettingsSet { key, group: g, .. } => format!("settings set {key}{}", group(g)),
            R::SettingsUnset { key, group: g } => format!("settings unset {key}{}", group(g)),
            R::Import { sync, dry_run, .. } => format!(
                "import{}{}",
                if *sync { " --sync" } else { "" },
                if *dry_run { " --dry-run" } else { "" }
            ),
            R::SetPassword { client, .. } => format!("client set-password {client}"),
            R::Maintenance { on } => format!("maintenance {}", if *on { "on" } else { "off" }),
            R::OneTimePassword { client } => format!("client otp {client}"),
            R::SendPasswordEmail { client } => format!("client send-password-email {client}"),
            R::MailQueue => "mail queue".into(),
            R::MailTemplateSet {
                purpose, group: g, ..
            } => format!("mail template set {purpose}{}", group(g)),
            R::MailTemplateUnset { purpose, group: g } => {
                format!("mail template unset {purpose}{}", group(g))
            }
            R::MailTemplateList => "mail template list".into(),
            R::MailRetry { id } => format!("mail retry {id}"),
            R::MailCancel { id } => format!("mail cancel {id}"),
            R::MailPurge {
                failed,
                older_than_days,
            } => format!(
                "mail purge{}{}",
                if *failed { " --failed" } else { "" },
                older_than_days
                    .map(|d| format!(" --older-than {d}"))
                    .unwrap_or_default()
            ),
            R::Audit { .. } => "audit".into(),
            R::PluginsList => "plugins list".into(),
            R::Hooks => "hooks".into(),
            R::ThemeStatus => "theme status".into(),
            R::ScriptsStatus => "scripts status".into(),
            R::ScriptsCheck { file, .. } => format!("scripts check {file}"),
            R::Backup { path } => format!("backup {path}"),
            R::Suspend { .. } => "suspend".into(),
            R::Resume => "resume".into(),
            R::MenuAdd { button } => format!("menu add {}", button.url),
            R::MenuList => "menu list".into(),
            R::MenuRemove { id } => format!("menu remove {id}"),
            R::FilesAdd { file } => format!("files add {}", file.path.display()),
            R::FilesList => "files list".into(),
            R::FilesRemove { id } => format!("files remove {id}"),
            R::ChangesList => "changes list".into(),
            R::ChangesApprove { id } => format!("changes approve {id}"),
            R::ChangesReject { id, .. } => format!("changes reject {id}"),
            R::PluginCommand { args, .. } => {
                let all = args.join(" ");
                let mut cut: String = all.chars().take(200).collect();
                if cut.len() < all.len() {
                    cut.push('…');
                }
                cut
            }
            R::ClientDisable { client, .. } => format!("client disable {client}"),
            R::ClientEnable { client } => format!("client enable {client}"),
            R::ClientList { .. } => "client list".into(),
            R::ClientShow { client } => format!("client show {client}"),
            R::ClientUnlock { client } => format!("client unlock {client}"),
            R::ClientSessions { client, end } => format!(
                "client sessions {client}{}",
                if *end { " --end" } else { "" }
            ),
        };
        escape(&text).into_owned()
    }
}

/// Runs an operator command as the user running this process.
pub fn execute(portal: &Portal, req: OpRequest) -> Result<String> {
    execute_as(portal, req, &Operator::current())
}

/// Runs an operator command for `who`. Every command that changes state is recorded in the
/// audit log with `who` (see [`OpRequest::audited`]), and every command gets one log line.
pub fn execute_as(portal: &Portal, req: OpRequest, who: &Operator) -> Result<String> {
    execute_with_progress(portal, req, who, &mut |_, _| {})
}

/// [`execute_as`] with a progress callback for an import (`done`, `total` records).
pub fn execute_with_progress(
    portal: &Portal,
    req: OpRequest,
    who: &Operator,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<String> {
    let audited = req.audited();
    let what = req.describe();
    let theme_key = matches!(
        &req,
        OpRequest::SettingsSet { key, .. } | OpRequest::SettingsUnset { key, .. }
            if portal.settings.definition(key).is_ok_and(|d| d.key == "ci_skin_theme")
    );
    let result = crate::audit::as_operator(&who.0, || run(portal, req, progress));
    match (&result, audited) {
        (Err(e), _) => {
            tracing::info!(operator = %who, command = %what, "operator command refused: {}", escape(&e.to_string()).lines().next().unwrap_or_default());
        }
        (Ok(_), Audited::No) => {
            tracing::info!(operator = %who, command = %what, "operator command");
        }
        (Ok(_), Audited::Own) => {
            tracing::info!(operator = %who, command = %what, "operator command done");
        }
        (Ok(text), Audited::As(kind)) => {
            let kind = if theme_key {
                AuditKind::ThemeChanged
            } else {
                kind
            };
            let summary = if kind == AuditKind::PluginCommand {
                what.clone()
            } else if kind == AuditKind::Import {
                // "imported 9 records in 0.02 s (584 records/s): 9 created, …" without the
                // timing, which says nothing about what changed.
                let first = text.lines().next().unwrap_or_default();
                let records = first.split(" in ").next().unwrap_or_default();
                let counts = first.split_once("): ").map_or("", |(_, c)| c);
                format!("{what}: {records}: {counts}")
            } else {
                let first = text.lines().next().unwrap_or_default();
                format!("{what}: {first}")
            };
            tracing::info!(operator = %who, command = %what, "operator command done: {summary}");
            crate::audit::as_operator(&who.0, || {
                portal.audit(Audit {
                    detail: Some(summary),
                    ..Audit::new(kind)
                })
            });
        }
    }
    result
}

fn run(portal: &Portal, req: OpRequest, progress: &mut dyn FnMut(usize, usize)) -> Result<String> {
    match req {
        OpRequest::PluginsList => Ok(plugins_list(portal)),
        OpRequest::Backup { path } => {
            let started = std::time::Instant::now();
            let info = crate::backup::write_file(
                &portal.store,
                std::path::Path::new(&path),
                portal.clock.unix(),
            )?;
            Ok(format!(
                "backup written to {path} in {} ms: {}",
                started.elapsed().as_millis(),
                info.describe()
            ))
        }
        OpRequest::Hooks => Ok(hooks_list(portal)),
        OpRequest::ScriptsStatus => Ok(portal.scripts.status(&hook_names(portal))),
        OpRequest::ScriptsCheck { file, source } => scripts_check(portal, &file, &source),
        OpRequest::ThemeStatus => theme_status(portal),
        OpRequest::PluginCommand { args, cwd } => {
            let Some(name) = args.first() else {
                return Err(Error::Invalid("no command given".into()));
            };
            let Some((owner, cmd)) = portal
                .registry
                .commands
                .iter()
                .find(|(_, c)| c.name == name.as_str())
            else {
                let mut known: Vec<&str> = crate::registry::CORE_COMMANDS.to_vec();
                known.extend(portal.registry.commands.iter().map(|(_, c)| c.name));
                return Err(Error::Invalid(format!(
                    "unknown command `{name}` (commands: {})",
                    known.join(", ")
                )));
            };
            let ctx = crate::plugin::OperatorCtx::for_command(
                portal,
                owner,
                cwd.map(std::path::PathBuf::from),
                progress,
            );
            (cmd.run)(&ctx, &args[1..])
        }
        OpRequest::ClientDisable { client, reason } => {
            crate::client_ops::disable(portal, &client, reason)
        }
        OpRequest::ClientEnable { client } => crate::client_ops::enable(portal, &client),
        OpRequest::ClientList {
            group,
            search,
            locked,
            disabled,
            limit,
        } => crate::client_ops::list(
            portal,
            &crate::client_ops::ListFilter {
                group,
                search,
                locked,
                disabled,
                limit,
            },
        ),
        OpRequest::ClientShow { client } => crate::client_ops::show(portal, &client),
        OpRequest::ClientUnlock { client } => crate::client_ops::unlock(portal, &client),
        OpRequest::ClientSessions { client, end } => {
            crate::client_ops::sessions(portal, &client, end)
        }
        OpRequest::SettingsList => Ok(settings_list(portal)),
        OpRequest::SettingsGet { key, group } => {
            let def = portal.settings.definition(&key)?;
            portal.settings.check_scope(def, group)?;
            let v = portal.settings.value(def.key, group);
            let source = if portal.settings.is_set(def.key, group) {
                match group {
                    Some(g) => format!("set for invoice group {g}"),
                    None => "set".to_string(),
                }
            } else if group.is_some() && portal.settings.is_set(def.key, None) {
                "global value".to_string()
            } else {
                "default".to_string()
            };
            Ok(format!(
                "{} = {}  ({source})",
                def.key,
                show_setting(def, &v)
            ))
        }
        OpRequest::SettingsSet { key, group, value } => {
            let v = change_setting(portal, &key, group, Some(value))?;
            let def = portal.settings.definition(&key)?;
            let scope = group.map_or(String::new(), |g| format!(" for invoice group {g}"));
            Ok(format!("{} = {}{scope}", def.key, show_setting(def, &v)))
        }
        OpRequest::SettingsUnset { key, group } => {
            let v = change_setting(portal, &key, group, None)?;
            let def = portal.settings.definition(&key)?;
            Ok(format!("{} is back to {}", def.key, show_setting(def, &v)))
        }
        OpRequest::Import {
            json,
            sync,
            dry_run,
        } => run_import(
            portal,
            &json,
            import::ImportOptions { sync, dry_run },
            progress,
        ),
        OpRequest::MailRetry { id } => {
            let e = crate::mail::retry(portal, id)?;
            Ok(format!(
                "mail #{} is due now{}",
                e.id,
                if portal_is_serving(portal) {
                    "; the portal sends it in a moment (see `portico mail queue`)"
                } else {
                    "; it is sent when the portal runs"
                }
            ))
        }
        OpRequest::MailCancel { id } => {
            let e = crate::mail::cancel(&portal.store, id)?;
            Ok(format!(
                "mail #{} is cancelled: it was taken out of the outbox unsent",
                e.id
            ))
        }
        OpRequest::MailPurge {
            failed,
            older_than_days,
        } => {
            if !failed {
                return Err(Error::Invalid(
                    "purge takes only mail given up after its retries: give --failed (mail still waiting is cancelled one by one with `portico mail cancel ID`)".into(),
                ));
            }
            let before =
                older_than_days.map(|d| portal.clock.unix().saturating_sub(i64::from(d) * 86_400));
            let n = crate::mail::purge_failed(&portal.store, before)?;
            Ok(format!(
                "deleted {n} failed mail(s){}",
                older_than_days
                    .map(|d| format!(" older than {d} day(s)"))
                    .unwrap_or_default()
            ))
        }
        OpRequest::SetPassword { client, password } => set_password(portal, &client, &password),
        OpRequest::OneTimePassword { client } => one_time_password(portal, &client),
        OpRequest::SendPasswordEmail { client } => send_password_email(portal, &client),
        OpRequest::MailQueue => mail_queue(portal),
        OpRequest::MailTemplateSet {
            purpose,
            group,
            subject,
            body,
        } => {
            check_group(portal, group)?;
            crate::mail::set_template(
                &portal.store,
                crate::mail::MailTemplate {
                    purpose: purpose.clone(),
                    invoice_group_id: group,
                    subject,
                    body,
                },
            )?;
            Ok(format!(
                "template {purpose} saved{}",
                group
                    .map(|g| format!(" for invoice group {g}"))
                    .unwrap_or_default()
            ))
        }
        OpRequest::MailTemplateUnset { purpose, group } => {
            check_group(portal, group)?;
            if crate::mail::remove_template(&portal.store, &purpose, group)? {
                Ok(format!(
                    "template {purpose} removed; the next one in line applies"
                ))
            } else {
                Err(Error::Invalid(format!(
                    "there is no such template for {purpose}"
                )))
            }
        }
        OpRequest::MailTemplateList => {
            let all = crate::mail::templates(&portal.store)?;
            if all.is_empty() {
                return Ok(
                    "no templates of your own; the built-in ones (English, Czech) apply".into(),
                );
            }
            Ok(all
                .into_iter()
                .map(|t| {
                    format!(
                        "{} [{}]\n  subject: {}\n  body:\n{}\n",
                        t.purpose,
                        t.invoice_group_id
                            .map_or("global".into(), |g| format!("invoice group {g}")),
                        escape(&t.subject),
                        crate::text::escape_keeping_lines(&t.body)
                    )
                })
                .collect())
        }
        OpRequest::Audit {
            client,
            limit,
            before,
            kind,
            since,
            until,
        } => audit_list(
            portal,
            AuditQuery {
                client,
                limit,
                before,
                kind,
                since,
                until,
            },
        ),
        OpRequest::Suspend { message } => {
            let message = message.trim();
            if message.is_empty() {
                return Err(Error::Invalid(
                    "--message: say why the portal is suspended (the clients see it)".into(),
                ));
            }
            if message.chars().count() > MAX_SUSPEND_MESSAGE {
                return Err(Error::Invalid(format!(
                    "--message: longer than {MAX_SUSPEND_MESSAGE} characters"
                )));
            }
            change_setting(
                portal,
                "portal_suspended_message",
                None,
                Some(message.to_string()),
            )?;
            Ok("the portal is suspended: clients see your message (portico resume ends it)".into())
        }
        OpRequest::Resume => {
            let was = !portal
                .settings
                .text("portal_suspended_message", None)
                .trim()
                .is_empty();
            change_setting(portal, "portal_suspended_message", None, None)?;
            Ok(if was {
                "the portal is open again".into()
            } else {
                "the portal was not suspended".into()
            })
        }
        OpRequest::MenuAdd { button } => {
            let b = crate::menu::add(portal, button)?;
            Ok(format!("custom button {} added", b.id))
        }
        OpRequest::MenuList => crate::menu::list(portal),
        OpRequest::FilesAdd { file } => {
            let f = crate::files::add(portal, file)?;
            Ok(format!(
                "file {} added: \"{}\" ({}, {} B){}",
                f.id,
                escape(&f.title),
                f.content_type,
                f.size,
                f.invoice_group_id
                    .map_or(String::new(), |g| format!(" for invoice group {g}"))
            ))
        }
        OpRequest::FilesList => crate::files::list(portal),
        OpRequest::FilesRemove { id } => crate::files::remove(portal, id),
        OpRequest::ChangesList => crate::data_change::list(portal),
        OpRequest::ChangesApprove { id } => crate::data_change::approve(portal, id),
        OpRequest::ChangesReject { id, reason } => crate::data_change::reject(portal, id, reason),
        OpRequest::MenuRemove { id } => crate::menu::remove(portal, id),
        OpRequest::Maintenance { on } => {
            change_setting(
                portal,
                "maintenance_mode",
                None,
                Some(if on { "on" } else { "off" }.into()),
            )?;
            Ok(format!(
                "maintenance mode is {}",
                if on { "on" } else { "off" }
            ))
        }
    }
}

/// Sets (`Some`) or unsets (`None`) a setting, with its hooks and checks; returns the value
/// that now applies.
fn change_setting(
    portal: &Portal,
    key: &str,
    group: Option<u64>,
    raw: Option<String>,
) -> Result<serde_json::Value> {
    let def = portal.settings.definition(key)?;
    // Checked before the hooks see it, so they never observe a change that is then refused.
    let check = |raw: &Option<String>| -> Result<()> {
        portal.settings.check_scope(def, group)?;
        if let Some(value) = raw {
            def.parse(value)?;
            if def.key == "ci_skin_theme" {
                let problems = portal.themes.check(value.trim());
                if !problems.is_empty() {
                    return Err(Error::Invalid(format!(
                        "theme `{}` cannot be used: {}",
                        value.trim(),
                        problems.join("; ")
                    )));
                }
            }
        }
        Ok(())
    };
    check(&raw)?;
    let mut ev = SettingChangeEvent {
        key: def.key.to_string(),
        invoice_group_id: group,
        raw_value: raw,
    };
    let hooks = &portal.registry.hooks;
    hooks
        .run("before_setting_change", &mut ev)
        .map_err(|v| Error::Invalid(v.message))?;
    check(&ev.raw_value)?;
    match &ev.raw_value {
        Some(value) => {
            portal.settings.set(def.key, group, value)?;
        }
        None => portal.settings.unset(def.key, group)?,
    }
    let _ = hooks.run("after_setting_change", &mut ev);
    Ok(portal.settings.value(def.key, group))
}

/// A setting's value as the operator reads it; a secret one only says whether it is set.
fn show_setting(def: &crate::settings::SettingDef, v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) if def.secret && !s.is_empty() => "(secret, set)".into(),
        _ => show(v),
    }
}

/// A setting's value as the operator reads it (control characters escaped).
fn show(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) if s.is_empty() => "\"\" (empty)".into(),
        serde_json::Value::String(s) => escape(s).into_owned(),
        other => other.to_string(),
    }
}

fn settings_list(portal: &Portal) -> String {
    let mut out = String::new();
    for d in portal.settings.definitions() {
        let v = portal.settings.value(d.key, None);
        let scope = match d.scope {
            Scope::Global => "global",
            Scope::InvoiceGroup => "per invoice group",
        };
        out.push_str(&format!(
            "{} = {}\n    {} [type: {}; {scope}; default: {}; from: {}]\n",
            d.key,
            show_setting(d, &v),
            escape(d.description),
            d.ty,
            show_setting(d, &d.default),
            d.owner
        ));
        for (g, v) in portal.settings.group_overrides(d.key) {
            out.push_str(&format!("    invoice group {g}: {}\n", show_setting(d, &v)));
        }
    }
    out
}

pub fn run_import(
    portal: &Portal,
    json: &str,
    opts: import::ImportOptions,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<String> {
    let started = std::time::Instant::now();
    let (core_json, sections) = plugin_sections(portal, json);
    let json = core_json.as_deref().unwrap_or(json);
    if let Some((_, s, _)) = sections.iter().find(|(_, _, raw)| !raw.starts_with('[')) {
        return Err(Error::Invalid(format!(
            "the bundle was rejected and nothing was changed: `{}` must be a list",
            s.name
        )));
    }
    let mut bundle = import::check_with(&portal.store, json, opts)?;
    let mut ev = ImportEvent {
        records: bundle.len(),
    };
    if !opts.dry_run {
        portal
            .registry
            .hooks
            .run("before_import", &mut ev)
            .map_err(|v| Error::Invalid(v.message))?;
    }
    // The documents' files are copied first; their old copies go once the import is written.
    let copies = crate::documents::copy_files(
        &portal.data_dir,
        &portal.store,
        &|| portal.next_id(),
        &mut bundle.documents,
        bundle.deletions[import::DOCUMENTS].iter(),
        opts.dry_run,
    )?;
    let report = match import::write_with(
        &portal.store,
        &bundle,
        &portal.registry.client_cleanups,
        opts.dry_run,
        progress,
    ) {
        Ok(r) => r,
        Err(e) => {
            copies.abandon(&portal.data_dir);
            return Err(e);
        }
    };
    if !opts.dry_run {
        copies.finish(&portal.data_dir);
    }
    // Plugins' sections (`traffic`, ...) run once core's records are in: they may name them.
    let mut plugin_lines = String::new();
    for (owner, section, raw) in sections {
        let ctx = crate::plugin::OperatorCtx::new(portal, owner);
        let line = (section.run)(&ctx, &raw, opts.dry_run)
            .map_err(|e| Error::Invalid(format!("{}: {e}", section.name)))?;
        plugin_lines.push_str(&format!("\n{}: {}", section.name, line.trim_end()));
    }
    if opts.dry_run {
        let changes = summary(&report);
        return Ok(format!(
            "dry run, nothing was changed: the bundle holds {} records; importing it would give {changes}\n{report}{plugin_lines}",
            report.total()
        ));
    }
    for (client_id, access) in &report.access_changes {
        portal.audit(Audit {
            client_id: Some(*client_id),
            detail: Some(format!("by the import (portal_access: {access})")),
            ..Audit::new(if *access {
                AuditKind::ClientEnabled
            } else {
                AuditKind::ClientDisabled
            })
        });
    }
    let _ = portal.registry.hooks.run("after_import", &mut ev);
    let secs = started.elapsed().as_secs_f64();
    Ok(format!(
        "imported {} records in {:.2} s ({:.0} records/s): {}\n{report}",
        report.total(),
        secs,
        report.total() as f64 / secs.max(1e-9),
        summary(&report)
    ) + plugin_lines.as_str())
}

/// Takes the sections plugins registered (`traffic`, ...) out of a bundle: returns the bundle
/// without them (or `None` when it holds none, or is not an object: core's check says why)
/// and each (owner, section, raw JSON text) present, in registration order.
#[allow(clippy::type_complexity)]
fn plugin_sections<'p>(
    portal: &'p Portal,
    json: &str,
) -> (
    Option<String>,
    Vec<(&'static str, &'p crate::registry::ImportSection, String)>,
) {
    let sections = &portal.registry.import_sections;
    if sections.is_empty() || !json.trim_start().starts_with('{') {
        return (None, Vec::new());
    }
    let Ok(map) = raw_object(json) else {
        return (None, Vec::new());
    };
    if !map
        .iter()
        .any(|(k, _)| sections.iter().any(|(_, s)| s.name == k.as_str()))
    {
        return (None, Vec::new());
    }
    let mut rest = String::with_capacity(json.len());
    rest.push('{');
    let mut found = Vec::new();
    for (key, raw) in &map {
        if let Some((owner, s)) = sections.iter().find(|(_, s)| s.name == key.as_str()) {
            found.push((*owner, s, raw.get().to_string()));
            continue;
        }
        if rest.len() > 1 {
            rest.push(',');
        }
        rest.push_str(&serde_json::to_string(key).unwrap_or_default());
        rest.push(':');
        rest.push_str(raw.get());
    }
    rest.push('}');
    found.sort_by_key(|(owner, s, _)| {
        sections
            .iter()
            .position(|(o, x)| o == owner && x.name == s.name)
    });
    (Some(rest), found)
}

/// The top-level members of a JSON object, each value as its raw text, in file order.
fn raw_object(json: &str) -> serde_json::Result<Vec<(String, &serde_json::value::RawValue)>> {
    struct Members<'a>(Vec<(String, &'a serde_json::value::RawValue)>);
    impl<'de> serde::Deserialize<'de> for Members<'de> {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
            struct V;
            impl<'de> serde::de::Visitor<'de> for V {
                type Value = Members<'de>;
                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("a JSON object")
                }
                fn visit_map<A: serde::de::MapAccess<'de>>(
                    self,
                    mut m: A,
                ) -> std::result::Result<Self::Value, A::Error> {
                    let mut out = Vec::new();
                    while let Some((k, v)) =
                        m.next_entry::<String, &serde_json::value::RawValue>()?
                    {
                        out.push((k, v));
                    }
                    Ok(Members(out))
                }
            }
            d.deserialize_map(V)
        }
    }
    serde_json::from_str::<Members<'_>>(json).map(|m| m.0)
}

/// "3 created, 1 updated, 5 unchanged, 2 deleted".
fn summary(r: &import::ImportReport) -> String {
    let sum = |f: fn(&crate::store::Changes) -> usize| r.changes.iter().map(f).sum::<usize>();
    format!(
        "{} created, {} updated, {} unchanged, {} deleted",
        sum(|c| c.created),
        sum(|c| c.updated),
        sum(|c| c.unchanged),
        r.deleted_total()
    )
}

/// Whether this process serves the portal (its mail worker runs), as opposed to a command
/// that opened the data folder while no portal ran.
fn portal_is_serving(portal: &Portal) -> bool {
    portal.serving.load(std::sync::atomic::Ordering::Relaxed)
}

/// An invoice group an operator named must exist, as for settings.
fn check_group(portal: &Portal, group: Option<u64>) -> Result<()> {
    if let Some(g) = group
        && portal
            .store
            .get_id::<crate::model::InvoiceGroup>(g)?
            .is_none()
    {
        return Err(Error::Invalid(format!(
            "there is no invoice group with id {g}"
        )));
    }
    Ok(())
}

/// Finds a client by number, login name or `#id`.
pub fn find_client(portal: &Portal, who: &str) -> Result<Client> {
    let who = who.trim();
    if let Some(id) = who.strip_prefix('#').and_then(|s| s.parse::<u64>().ok())
        && let Some(c) = portal.store.get_id::<Client>(id)?
    {
        return Ok(c);
    }
    if let Some(c) = portal.store.client_by_number(who)? {
        return Ok(c);
    }
    if let Some(c) = portal.store.client_by_username(who)? {
        return Ok(c);
    }
    Err(Error::Invalid(format!(
        "no client with number or login name `{}` (use #ID for an internal id)",
        escape(who)
    )))
}

/// Sets a password chosen by the operator. It works for one login, after which the client must
/// choose their own.
pub fn set_password(portal: &Portal, who: &str, password: &str) -> Result<String> {
    let client = find_client(portal, who)?;
    let min = portal.password_min_length();
    let words = crate::passwords::personal_words(&client);
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    if let Err(weakness) = crate::passwords::check_new_password(password, min, &words) {
        return Err(Error::Invalid(match weakness {
            crate::passwords::Weakness::TooShort => format!("the password must have at least {min} characters"),
            crate::passwords::Weakness::TooLong => "the password is too long (at most 1024 characters)".into(),
            crate::passwords::Weakness::TooCommon => {
                "the password is too common or too easy to guess; choose another (or use `portico client otp`)".into()
            }
        }));
    }
    let hash = auth::hash_password(password)?;
    give_one_time_password(portal, client.id, hash)?;
    portal.audit(Audit {
        client_id: Some(client.id),
        ..Audit::new(AuditKind::OperatorSetPassword)
    });
    Ok(format!(
        "password set for client {} ({}); it works for one login, then the client chooses their own{}",
        escape(&client.number),
        escape(&client.name),
        disabled_note(portal, &client)?
    ))
}

/// Stores an operator-given password for one login. The client starts afresh: their sessions end
/// and a lockout is lifted, so the new password can be used at once.
fn give_one_time_password(portal: &Portal, client_id: u64, hash: String) -> Result<()> {
    // Links, pending link mails and sessions end with the old password, in the same step.
    auth::set_password(
        &portal.store,
        client_id,
        hash,
        portal.clock.unix(),
        true,
        None,
    )?;
    crate::lockout::clear(&portal.store, client_id)
}

/// Generates a one-time password, stores only its hash and returns it for printing once.
pub fn one_time_password(portal: &Portal, who: &str) -> Result<String> {
    let client = find_client(portal, who)?;
    let otp = crate::passwords::generate_one_time_password()?;
    let hash = auth::hash_password(&otp)?;
    give_one_time_password(portal, client.id, hash)?;
    portal.audit(Audit {
        client_id: Some(client.id),
        ..Audit::new(AuditKind::OperatorOneTimePassword)
    });
    Ok(format!(
        "one-time password for client {} ({}): {otp}\nIt works for one login; the client then chooses their own. It is not stored and will not be shown again.{}",
        escape(&client.number),
        escape(&client.name),
        disabled_note(portal, &client)?
    ))
}

/// Said after a password is given to a disabled client: it works only once they are enabled.
fn disabled_note(portal: &Portal, client: &Client) -> Result<&'static str> {
    Ok(if crate::access::is_disabled(&portal.store, client)? {
        "\nThe client is disabled: the password works only once they are enabled again."
    } else {
        ""
    })
}

/// Queues the "create your password" e-mail for a client.
pub fn send_password_email(portal: &Portal, who: &str) -> Result<String> {
    let client = find_client(portal, who)?;
    if crate::access::is_disabled(&portal.store, &client)? {
        return Err(Error::Invalid(format!(
            "client {} is disabled (see `portico client show {}`); enable them first",
            escape(&client.number),
            escape(&client.number)
        )));
    }
    if crate::mail::sender(portal).is_none() {
        return Err(Error::Invalid(
            "set system_mail and system_mail_name first (portico settings set system_mail ...)"
                .into(),
        ));
    }
    let Some(email) = client.email.clone().filter(|e| !e.is_empty()) else {
        return Err(Error::Invalid(format!(
            "client {} ({}) has no e-mail address; import one first",
            escape(&client.number),
            escape(&client.name)
        )));
    };
    if crate::mail::link_base(portal).is_none() {
        return Err(Error::Invalid(
            "set ci_url (or ispadmin_server) so the link can be built".into(),
        ));
    }
    let lang = client
        .language
        .clone()
        .unwrap_or_else(|| crate::i18n::FALLBACK.to_string());
    if crate::mail::has_pending_link(&portal.store, client.id)? {
        return Err(Error::Invalid(format!(
            "a password e-mail for client {} is already waiting in the outbox (see `portico mail queue`)",
            escape(&client.number)
        )));
    }
    let id = crate::mail::enqueue(
        portal,
        crate::mail::MailJob::PasswordLink {
            client_id: client.id,
            purpose: crate::passwords::LinkPurpose::Create,
            lang,
        },
    )?;
    portal.audit(Audit {
        client_id: Some(client.id),
        ..Audit::new(AuditKind::OperatorPasswordEmail)
    });
    Ok(format!(
        "\"create your password\" e-mail to {} queued as outbox #{id}; the running portal sends it (see `portico mail queue`)",
        escape(&email)
    ))
}

fn mail_queue(portal: &Portal) -> Result<String> {
    let entries = crate::mail::queue(&portal.store)?;
    if entries.is_empty() {
        return Ok("the mail outbox is empty".into());
    }
    let mut out = String::new();
    for e in entries {
        let (what, who) = match &e.job {
            crate::mail::MailJob::PasswordLink {
                client_id, purpose, ..
            } => (
                format!("password link ({purpose:?})"),
                portal.store.get_id::<Client>(*client_id)?.map_or_else(
                    || format!("client #{client_id}"),
                    |c| {
                        format!(
                            "client {} <{}>",
                            escape(&c.number),
                            escape(c.email.as_deref().unwrap_or_default())
                        )
                    },
                ),
            ),
            crate::mail::MailJob::Plugin {
                plugin,
                to,
                subject,
                ..
            } => (
                format!("{} mail \"{}\"", escape(plugin), escape(subject)),
                format!("<{}>", escape(to)),
            ),
        };
        let state = if e.failed {
            "FAILED".to_string()
        } else {
            format!("pending, next try {}", fmt_time(e.next_attempt_at))
        };
        out.push_str(&format!(
            "#{} {what} for {who}: {state}; {} attempt(s){}\n",
            e.id,
            e.attempts,
            e.last_error
                .map(|x| format!("; last error: {}", escape(&x)))
                .unwrap_or_default()
        ));
    }
    Ok(out)
}

pub(crate) fn fmt_time(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0).map_or_else(
        || unix.to_string(),
        |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    )
}

/// What `portico audit` asks for, as typed.
struct AuditQuery {
    client: Option<String>,
    limit: usize,
    before: Option<u64>,
    kind: Option<String>,
    since: Option<String>,
    until: Option<String>,
}

/// A date (`2026-11-27`, the whole day in UTC) or a time (`2026-11-27 13:05`,
/// `2026-11-27T13:05:09Z`) for `--since`/`--until`: the first second it covers and the first
/// second after it.
fn parse_when(flag: &str, raw: &str) -> Result<(i64, i64)> {
    use chrono::{NaiveDate, NaiveDateTime};
    let t = raw.trim();
    if let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        let start = d.and_hms_opt(0, 0, 0).map(|x| x.and_utc().timestamp());
        if let Some(start) = start {
            return Ok((start, start + 86_400));
        }
    }
    for fmt in [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(dt) = NaiveDateTime::parse_from_str(t.trim_end_matches('Z'), fmt) {
            let at = dt.and_utc().timestamp();
            let step = if fmt.ends_with("%M") { 60 } else { 1 };
            return Ok((at, at + step));
        }
    }
    Err(Error::Invalid(format!(
        "{flag} `{}` is not a date: use YYYY-MM-DD or YYYY-MM-DD HH:MM[:SS] (UTC); nothing was listed",
        escape(raw)
    )))
}

fn audit_list(portal: &Portal, q: AuditQuery) -> Result<String> {
    let client_id = match &q.client {
        Some(who) => Some(find_client(portal, who)?.id),
        None => None,
    };
    let kind = match &q.kind {
        Some(k) => Some(crate::audit::AuditKind::parse(k).ok_or_else(|| {
            let known: Vec<String> = AuditKind::ALL.iter().map(|k| k.name()).collect();
            Error::Invalid(format!(
                "--kind `{}` is not a kind of audit event; kinds: {}",
                escape(k),
                known.join(", ")
            ))
        })?),
        None => None,
    };
    let since = q
        .since
        .as_deref()
        .map(|s| parse_when("--since", s))
        .transpose()?
        .map(|(start, _)| start);
    let until = q
        .until
        .as_deref()
        .map(|s| parse_when("--until", s))
        .transpose()?
        .map(|(_, end)| end);
    if let (Some(s), Some(u)) = (since, until)
        && s >= u
    {
        return Err(Error::Invalid(
            "--since is after --until: no event can match; nothing was listed".into(),
        ));
    }
    let filter = crate::audit::Filter {
        client_id,
        kind,
        since,
        until,
        before: q.before,
    };
    // One more than asked for says whether an older page exists.
    let mut events =
        crate::audit::list_filtered(&portal.store, &filter, q.limit.saturating_add(1))?;
    let more = events.len() > q.limit;
    events.truncate(q.limit);
    if events.is_empty() {
        return Ok("no audit events".into());
    }
    let mut numbers: std::collections::HashMap<u64, String> = std::collections::HashMap::new();
    let mut out = String::new();
    for e in &events {
        let client = match e.client_id {
            None => "-".to_string(),
            Some(c) => match numbers.get(&c) {
                Some(n) => n.clone(),
                None => {
                    // A client deleted since is shown by internal id.
                    let n = portal
                        .store
                        .get_id::<Client>(c)?
                        .map_or_else(|| format!("#{c}"), |cl| escape(&cl.number).into_owned());
                    numbers.insert(c, n.clone());
                    n
                }
            },
        };
        out.push_str(&format!(
            "{}  {:<28} client={} login={} source={}{}{}\n",
            fmt_time(e.at),
            e.kind.name(),
            client,
            e.login.as_deref().map_or("-".into(), escape),
            e.source.as_deref().map_or("-".into(), escape),
            e.operator
                .as_deref()
                .map(|o| format!(" by={}", escape(o)))
                .unwrap_or_default(),
            e.detail
                .as_deref()
                .map(|d| format!("  {}", escape(d)))
                .unwrap_or_default()
        ));
    }
    if more && let Some(last) = events.last() {
        let mut again = String::from("portico audit");
        for (flag, v) in [
            ("--client", &q.client),
            ("--kind", &q.kind),
            ("--since", &q.since),
            ("--until", &q.until),
        ] {
            if let Some(v) = v {
                let v = escape(v);
                let plain = v
                    .chars()
                    .all(|c| c.is_alphanumeric() || "_.:@#-+".contains(c));
                if plain {
                    again.push_str(&format!(" {flag} {v}"));
                } else {
                    again.push_str(&format!(" {flag} '{}'", v.replace('\'', r"'\''")));
                }
            }
        }
        out.push_str(&format!("(older events: {again} --before {})\n", last.id));
    }
    Ok(out)
}

fn plugins_list(portal: &Portal) -> String {
    use crate::registry::PluginKind;
    let mut out = String::new();
    for p in &portal.registry.plugins {
        let (kind, state) = match &p.kind {
            PluginKind::Core => ("core".to_string(), "loaded".to_string()),
            PluginKind::CompiledIn => ("compiled-in".to_string(), "loaded".to_string()),
            PluginKind::Dynamic { file } => {
                let lib = portal.dynamic.iter().find(|l| l.id == p.id);
                let state = match (
                    lib.and_then(|l| l.disabled_reason()),
                    lib.map_or(0, |l| l.failures()),
                ) {
                    (Some(reason), _) => format!("disabled: {}", escape(&reason)),
                    (None, 0) => "loaded".to_string(),
                    (None, n) => format!("loaded, {n} failure(s) since start"),
                };
                (format!("dynamic ({})", escape(file)), state)
            }
        };
        out.push_str(&format!(
            "{} {} ({}): {kind}, {state}\n",
            escape(&p.id),
            escape(&p.version),
            escape(&p.name)
        ));
        for (kind, items) in &p.registered {
            out.push_str(&format!("    {kind}: {}\n", escape(items)));
        }
    }
    for r in &portal.registry.refused {
        out.push_str(&format!(
            "(not loaded): dynamic ({}), refused: {}\n",
            escape(&r.file),
            escape(&r.reason)
        ));
    }
    out
}

fn hooks_list(portal: &Portal) -> String {
    let mut out = String::new();
    for h in portal.registry.hooks.definitions() {
        let kind = if h.refusable {
            "may refuse"
        } else if h.amendable.is_empty() {
            "observes"
        } else {
            "may amend, cannot refuse"
        };
        out.push_str(&format!(
            "{} (declared by {}; {kind})\n    {}\n",
            escape(&h.name),
            escape(&h.owner),
            escape(&h.description)
        ));
        for (f, d) in &h.fields {
            let amend = if h.amendable.contains(f) {
                " [amendable]"
            } else {
                ""
            };
            out.push_str(&format!("    event.{}{amend}: {}\n", escape(f), escape(d)));
        }
        let handlers = portal.registry.hooks.handler_owners(&h.name);
        if !handlers.is_empty() {
            out.push_str(&format!("    handled by: {}\n", handlers.join(", ")));
        }
    }
    out
}

fn hook_names(portal: &Portal) -> Vec<&str> {
    portal
        .registry
        .hooks
        .definitions()
        .map(|h| h.name.as_str())
        .collect()
}

/// `portico scripts check FILE`: whether the file compiles, the hooks it handles, warnings.
fn scripts_check(portal: &Portal, file: &str, source: &str) -> Result<String> {
    match portal.scripts.check(source, &hook_names(portal)) {
        Ok(report) => {
            let mut out = format!(
                "{}: compiles; handles {}\n",
                escape(file),
                if report.handles.is_empty() {
                    "no hook".to_string()
                } else {
                    report.handles.join(", ")
                }
            );
            for w in &report.warnings {
                out.push_str(&format!("warning: {}\n", escape(w)));
            }
            Ok(out)
        }
        Err(why) => Err(Error::Invalid(format!(
            "{}: does not compile: {}",
            escape(file),
            escape(&why)
        ))),
    }
}

/// `portico theme status`: the active theme per invoice group, each built theme's errors and
/// quarantined templates, and the last reload.
fn theme_status(portal: &Portal) -> Result<String> {
    use std::fmt::Write as _;
    let mut out = String::new();
    let global = portal.theme_for(None);
    let _ = writeln!(out, "active theme: {global} (global)");
    let mut active = vec![global];
    for g in portal.store.all::<crate::model::InvoiceGroup>()? {
        let theme = portal.theme_for(Some(g.id));
        if portal.settings.is_set("ci_skin_theme", Some(g.id)) {
            let _ = writeln!(
                out,
                "  invoice group {} ({}): {theme}",
                g.id,
                escape(&g.name)
            );
        }
        if !active.contains(&theme) {
            active.push(theme);
        }
    }
    // Builds the active themes that no request has used yet, so their errors show too.
    for t in &active {
        portal.themes.engine(t);
    }
    let (engines, last) = portal.themes.status();
    for e in engines {
        let _ = writeln!(
            out,
            "\ntheme {} (chain: {}), built {}",
            e.theme,
            e.chain.join(" → "),
            e.built_at.format("%Y-%m-%d %H:%M:%S UTC")
        );
        if e.build_errors.is_empty() && e.render_errors.is_empty() && e.quarantined.is_empty() {
            let _ = writeln!(out, "  no errors");
        }
        for err in &e.build_errors {
            let _ = writeln!(out, "  left out (does not build):");
            for line in err.lines() {
                let _ = writeln!(out, "    {}", escape(line));
            }
        }
        for (template, err) in &e.render_errors {
            let _ = writeln!(out, "  render error in {}:", escape(template));
            for line in err.lines() {
                let _ = writeln!(out, "    {}", escape(line));
            }
        }
        for template in &e.quarantined {
            let _ = writeln!(
                out,
                "  quarantined (ran past the render deadline): {}",
                escape(template)
            );
        }
    }
    match last {
        Some(r) => {
            let _ = writeln!(
                out,
                "\nlast reload: {}",
                r.at.format("%Y-%m-%d %H:%M:%S UTC")
            );
            for (theme, errors) in r.themes {
                if errors.is_empty() {
                    let _ = writeln!(out, "  {theme}: applied");
                } else {
                    let _ = writeln!(out, "  {theme}: {} error(s), not applied", errors.len());
                }
            }
        }
        None => {
            let _ = writeln!(out, "\nno reload since start");
        }
    }
    Ok(out)
}
