//! `portico`: the command line of the Portico client portal.

mod config;
mod plugins;

/// `println!` that stops quietly when stdout is closed (`portico settings list | head`).
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        if writeln!(out, $($arg)*).is_err() {
            std::process::exit(0);
        }
    }};
}

mod theme_context;

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use portico_core::Error;
use portico_core::internal::ops::{self, OpRequest};
use portico_core::internal::portal::SecureCookies;
use portico_core::internal::{
    DynamicPlugins, Portal, PortalOptions, control, demo, store::Store, web,
};
use portico_core::rocket::fairing::AdHoc;

use config::{Config, Overrides};

#[derive(Parser)]
#[command(
    name = "portico",
    version,
    about = "Portico: a self-hosted client portal for Internet service providers"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create a demo ISP (if the data folder is new), serve it and print the URL and logins.
    Demo(ServeArgs),
    /// Serve the portal.
    Serve(ServeArgs),
    /// Import (upsert) a JSON bundle from the billing system; see docs/import.md.
    Import {
        /// The bundle file.
        file: PathBuf,
        #[command(flatten)]
        data: DataArg,
    },
    /// List, read or change settings.
    Settings {
        #[command(subcommand)]
        action: SettingsAction,
        #[command(flatten)]
        data: DataArg,
    },
    /// Operator actions on one client.
    Client {
        #[command(subcommand)]
        action: ClientAction,
        #[command(flatten)]
        data: DataArg,
    },
    /// Turn maintenance mode on or off: clients see the maintenance page.
    Maintenance {
        /// on or off (also yes/no, true/false, 1/0, in any case, like yes/no settings).
        #[arg(value_name = "on|off", value_parser = parse_on_off, action = clap::ArgAction::Set)]
        state: bool,
        #[command(flatten)]
        data: DataArg,
    },
    /// Theme tools.
    Theme {
        #[command(subcommand)]
        action: ThemeAction,
    },
    /// The mail outbox and mail templates.
    Mail {
        #[command(subcommand)]
        action: MailAction,
        #[command(flatten)]
        data: DataArg,
    },
    /// Every plugin (core, compiled-in, dynamic) with its version, state and what it registered.
    Plugins {
        #[command(subcommand)]
        action: PluginsAction,
        #[command(flatten)]
        data: DataArg,
    },
    /// Every hook point with its event's fields and who handles it.
    Hooks {
        #[command(flatten)]
        data: DataArg,
    },
    /// A command a plugin adds (`portico <command> ARGS...`; `portico plugins list` shows them).
    #[command(external_subcommand)]
    External(Vec<String>),
    /// The security audit log (logins, failures, lockouts, resets, operator password actions).
    Audit {
        /// Only this client (number, login name or #ID).
        #[arg(long)]
        client: Option<String>,
        /// How many events, newest first.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Only events older than this event id (the last page ends with the id to use).
        #[arg(long, value_name = "ID")]
        before: Option<u64>,
        #[command(flatten)]
        data: DataArg,
    },
}

#[derive(Subcommand)]
enum PluginsAction {
    /// List the plugins.
    List,
}

#[derive(Subcommand)]
enum MailAction {
    /// Mail waiting to be sent, and mail given up after its retries.
    Queue,
    /// Mail templates of your own (the built-in English and Czech ones apply otherwise).
    Template {
        #[command(subcommand)]
        action: TemplateAction,
    },
}

#[derive(Subcommand)]
enum TemplateAction {
    /// List your templates.
    List,
    /// Save a template. `$CI_PASSWORD_LINK$` (or `{{ link }}`) is replaced by the link; Tera
    /// variables `client.name`, `client.number`, `reason`, `valid_minutes`, `sender_name` work.
    Set {
        /// The purpose: new_portal_password.
        purpose: String,
        #[arg(long)]
        subject: String,
        /// File with the body text.
        #[arg(long, value_name = "FILE")]
        body_file: PathBuf,
        /// Only for this invoice group.
        #[arg(long, value_name = "ID")]
        group: Option<u64>,
    },
    /// Remove a template.
    Unset {
        purpose: String,
        #[arg(long, value_name = "ID")]
        group: Option<u64>,
    },
}

#[derive(Args, Clone)]
struct ServeArgs {
    /// Address to listen on, e.g. 127.0.0.1:8000 or 0.0.0.0:80 (port 0 picks a free port).
    #[arg(long, value_name = "ADDR")]
    bind: Option<std::net::SocketAddr>,
    /// Data folder holding the store.
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Themes folder.
    #[arg(long, value_name = "DIR")]
    themes: Option<PathBuf>,
    /// Operator scripts folder (reserved: Rhai scripting is not built yet and nothing is loaded).
    #[arg(long, value_name = "DIR")]
    scripts: Option<PathBuf>,
    /// Folder of dynamic plugins to load at start (must not be writable by group or others).
    #[arg(long, value_name = "DIR")]
    plugin_dir: Option<PathBuf>,
    /// Configuration file (default: ./portico.toml when present).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// For theme designers: open pages reload themselves when the theme changes. Not for
    /// production.
    #[arg(long)]
    dev: bool,
    /// For tests only: move the clock by the number of seconds written in FILE. Debug builds
    /// only; a release build refuses the flag.
    #[cfg(debug_assertions)]
    #[arg(long, value_name = "FILE", hide = true)]
    test_clock_offset_file: Option<PathBuf>,
}

#[derive(Args, Clone)]
struct DataArg {
    /// Data folder holding the store.
    #[arg(long, value_name = "DIR", global = true)]
    data: Option<PathBuf>,
    /// Configuration file (default: ./portico.toml when present).
    #[arg(long, value_name = "FILE", global = true)]
    config: Option<PathBuf>,
    /// Folder of dynamic plugins: load them so their settings are known when no portal runs.
    #[arg(long, value_name = "DIR", global = true)]
    plugin_dir: Option<PathBuf>,
}

#[derive(Subcommand)]
enum SettingsAction {
    /// Every setting with its value, type, scope, default and description.
    List,
    /// One setting's value.
    Get {
        key: String,
        /// Read the value that applies to this invoice group.
        #[arg(long, value_name = "ID")]
        group: Option<u64>,
    },
    /// Change a setting (checked against its type).
    Set {
        key: String,
        value: String,
        /// Set it only for this invoice group (per-invoice-group settings only).
        #[arg(long, value_name = "ID")]
        group: Option<u64>,
    },
    /// Remove a value so the default (or the global value) applies again.
    Unset {
        key: String,
        #[arg(long, value_name = "ID")]
        group: Option<u64>,
    },
}

#[derive(Subcommand)]
enum ClientAction {
    /// Set a password for a client by hand. It works for one login, after which the client must
    /// choose their own. Read from the terminal without echo (asked twice), or as one line from
    /// standard input when that is not a terminal.
    SetPassword {
        /// Client number, login name, or #ID.
        client: String,
    },
    /// Generate a one-time password and print it once. It works for one login, after which the
    /// client must choose their own.
    Otp {
        /// Client number, login name, or #ID.
        client: String,
    },
    /// Send the client the "create your password" e-mail (through the outbox).
    SendPasswordEmail {
        /// Client number, login name, or #ID.
        client: String,
    },
    /// Take away the client's access: they cannot log in, their sessions end and their password
    /// links stop working, until `portico client enable`.
    Disable {
        /// Client number, login name, or #ID.
        client: String,
        /// Why (kept with the block, shown by `client show` and in the audit log).
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
    },
    /// Give back the access an operator took away (not the import's `portal_access: false`).
    Enable {
        /// Client number, login name, or #ID.
        client: String,
    },
    /// Find clients: by invoice group, text (number, login name, name, e-mail, phone), lockout or
    /// disabled access.
    List {
        /// Only clients of this invoice group.
        #[arg(long, value_name = "ID")]
        group: Option<u64>,
        /// Text in the number, login name, name, e-mail or phone (case-insensitive), or #ID.
        #[arg(long, value_name = "TEXT")]
        search: Option<String>,
        /// Only clients locked out after wrong passwords.
        #[arg(long)]
        locked: bool,
        /// Only disabled clients (by an operator or by the import).
        #[arg(long)]
        disabled: bool,
        /// At most this many, by client number.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Everything the portal knows about a client's account: data, invoice group, password set
    /// or not, lockout, access, last login, sessions, pending links and mails.
    Show {
        /// Client number, login name, or #ID.
        client: String,
    },
    /// Lift a lockout after wrong passwords.
    Unlock {
        /// Client number, login name, or #ID.
        client: String,
    },
    /// List the client's live sessions, or end them all with --end.
    Sessions {
        /// Client number, login name, or #ID.
        client: String,
        /// End every session of the client.
        #[arg(long)]
        end: bool,
    },
}

#[derive(Subcommand)]
enum ThemeAction {
    /// Build a theme (or every theme) and list each error with file and line.
    Check {
        name: Option<String>,
        /// Themes folder.
        #[arg(long, value_name = "DIR")]
        themes: Option<PathBuf>,
        /// Folder of dynamic plugins, so themes that override or extend their templates are
        /// checked against them (default: plugin_dir from the configuration).
        #[arg(long, value_name = "DIR")]
        plugin_dir: Option<PathBuf>,
    },
    /// Show the active theme per invoice group, each theme's errors and quarantined
    /// templates, and the last reload (of the running portal).
    Status {
        #[command(flatten)]
        data: DataArg,
    },
    /// The variables a page template receives, each with what it is and an example from the
    /// demo data. Without PAGE (or with an unknown one), the list of pages.
    Context {
        /// The page: login, forgot, password-link, notice, information, services, invoices,
        /// password, error, maintenance.
        page: Option<String>,
    },
}

/// mimalloc instead of glibc's malloc: on the page benchmarks it cut allocator time and the
/// memory that per-thread arenas keep (bench/README.md has the figures).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc commits its arenas eagerly by default: on a 100k-client store that kept about 40 MB
/// more resident than needed, for no speed (bench/README.md). The option is read before `main`
/// runs, so the process runs itself again once (`exec`: same PID, same arguments) with it
/// off, unless the operator set it.
fn commit_allocator_memory_lazily() {
    use std::os::unix::process::CommandExt as _;
    const KEY: &str = "MIMALLOC_ARENA_EAGER_COMMIT";
    if std::env::var_os(KEY).is_some() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    // `exec` returns only if it failed; then go on with mimalloc's default.
    let _ = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env(KEY, "0")
        .exec();
}

fn main() {
    commit_allocator_memory_lazily();
    // Everything this process creates (the store, the control socket, a data folder that
    // `import` or `serve` makes) is for its own user only. Set before any thread starts, so no
    // file is ever created with looser permissions; the store and socket code also set their
    // modes themselves, for older folders and for callers that skip this.
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    let cli = Cli::parse();
    if let Err(msg) = run(cli) {
        eprintln!("error: {msg}");
        std::process::exit(1);
    }
}

fn init_logging(filter: &str) {
    let filter = std::env::var("PORTICO_LOG").unwrap_or_else(|_| filter.to_string());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
        .try_init();
}

fn load_config(
    file: Option<&Path>,
    defaults: Config,
    overrides: &Overrides,
) -> Result<Config, String> {
    let (cfg, warnings) = config::load(file, defaults, overrides)?;
    init_logging(&cfg.log);
    for w in warnings {
        tracing::warn!("{w}");
    }
    Ok(cfg)
}

fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Demo(args) => {
            let defaults = Config {
                data: PathBuf::from("portico-demo-data"),
                ..Config::default()
            };
            serve(args, defaults, true)
        }
        Command::Serve(args) => serve(args, Config::default(), false),
        Command::Import { file, data } => {
            let cfg = operator_config(&data)?;
            let json =
                std::fs::read(&file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
            let json = String::from_utf8(json)
                .map_err(|_| format!("{} is not UTF-8 text", file.display()))?;
            // A rejected bundle must not leave a new, empty data folder behind.
            if !cfg.data.join("store").exists() {
                portico_core::internal::import::check(&Store::in_memory(), &json)
                    .map_err(|e| e.to_string())?;
            }
            match open_direct(&cfg, true)? {
                Some(portal) => {
                    let text = import_with_progress(&portal, &json)?;
                    say!("{text}");
                    Ok(())
                }
                None => {
                    eprintln!(
                        "a portal is running on {}; sending the bundle to it",
                        cfg.data.display()
                    );
                    remote(&cfg.data, OpRequest::Import { json })
                }
            }
        }
        Command::Settings { action, data } => {
            let cfg = operator_config(&data)?;
            let req = match action {
                SettingsAction::List => OpRequest::SettingsList,
                SettingsAction::Get { key, group } => OpRequest::SettingsGet { key, group },
                SettingsAction::Set { key, value, group } => {
                    OpRequest::SettingsSet { key, group, value }
                }
                SettingsAction::Unset { key, group } => OpRequest::SettingsUnset { key, group },
            };
            operator(&cfg, req)
        }
        Command::Client { action, data } => {
            let cfg = operator_config(&data)?;
            match action {
                ClientAction::SetPassword { client } => {
                    let password = read_new_password()?;
                    operator(&cfg, OpRequest::SetPassword { client, password })
                }
                ClientAction::Otp { client } => {
                    operator(&cfg, OpRequest::OneTimePassword { client })
                }
                ClientAction::SendPasswordEmail { client } => {
                    operator(&cfg, OpRequest::SendPasswordEmail { client })
                }
                ClientAction::Disable { client, reason } => {
                    operator(&cfg, OpRequest::ClientDisable { client, reason })
                }
                ClientAction::Enable { client } => {
                    operator(&cfg, OpRequest::ClientEnable { client })
                }
                ClientAction::List {
                    group,
                    search,
                    locked,
                    disabled,
                    limit,
                } => operator(
                    &cfg,
                    OpRequest::ClientList {
                        group,
                        search,
                        locked,
                        disabled,
                        limit,
                    },
                ),
                ClientAction::Show { client } => operator(&cfg, OpRequest::ClientShow { client }),
                ClientAction::Unlock { client } => {
                    operator(&cfg, OpRequest::ClientUnlock { client })
                }
                ClientAction::Sessions { client, end } => {
                    operator(&cfg, OpRequest::ClientSessions { client, end })
                }
            }
        }
        Command::Maintenance { state, data } => {
            let cfg = operator_config(&data)?;
            operator(&cfg, OpRequest::Maintenance { on: state })
        }
        Command::Mail { action, data } => {
            let cfg = operator_config(&data)?;
            let req = match action {
                MailAction::Queue => OpRequest::MailQueue,
                MailAction::Template {
                    action: TemplateAction::List,
                } => OpRequest::MailTemplateList,
                MailAction::Template {
                    action:
                        TemplateAction::Set {
                            purpose,
                            subject,
                            body_file,
                            group,
                        },
                } => {
                    let body = std::fs::read_to_string(&body_file)
                        .map_err(|e| format!("cannot read {}: {e}", body_file.display()))?;
                    OpRequest::MailTemplateSet {
                        purpose,
                        group,
                        subject,
                        body,
                    }
                }
                MailAction::Template {
                    action: TemplateAction::Unset { purpose, group },
                } => OpRequest::MailTemplateUnset { purpose, group },
            };
            operator(&cfg, req)
        }
        Command::Plugins {
            action: PluginsAction::List,
            data,
        } => operator(&operator_config(&data)?, OpRequest::PluginsList),
        Command::Hooks { data } => operator(&operator_config(&data)?, OpRequest::Hooks),
        Command::External(args) => {
            // Plugin commands take the usual --data/--config/--plugin-dir anywhere.
            let (data, args) = split_data_args(args)?;
            operator(&operator_config(&data)?, OpRequest::PluginCommand { args })
        }
        Command::Audit {
            client,
            limit,
            before,
            data,
        } => {
            let cfg = operator_config(&data)?;
            operator(
                &cfg,
                OpRequest::Audit {
                    client,
                    limit,
                    before,
                },
            )
        }
        Command::Theme {
            action:
                ThemeAction::Check {
                    name,
                    themes,
                    plugin_dir,
                },
        } => {
            let cfg = load_config(
                None,
                Config {
                    log: "warn".into(),
                    ..Config::default()
                },
                &Overrides {
                    themes,
                    plugin_dir,
                    ..Overrides::default()
                },
            )?;
            theme_check(&cfg.themes, cfg.plugin_dir.clone(), name.as_deref())
        }
        Command::Theme {
            action: ThemeAction::Status { data },
        } => {
            let cfg = operator_config(&data)?;
            operator(&cfg, OpRequest::ThemeStatus)
        }
        Command::Theme {
            action: ThemeAction::Context { page },
        } => {
            init_logging("error");
            theme_context::run(page.as_deref())
        }
    }
}

/// A yes/no word as yes/no settings take it: on/off, yes/no, true/false, 1/0, in any case.
fn parse_on_off(raw: &str) -> Result<bool, String> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "on" | "yes" => Ok(true),
        "0" | "false" | "off" | "no" => Ok(false),
        _ => Err(format!("`{raw}` is not on or off")),
    }
}

/// Operator commands print their result on stdout; only warnings and errors go to the log.
fn operator_config(data: &DataArg) -> Result<Config, String> {
    load_config(
        data.config.as_deref(),
        Config {
            log: "warn".into(),
            ..Config::default()
        },
        &Overrides {
            data: data.data.clone(),
            plugin_dir: data.plugin_dir.clone(),
            ..Overrides::default()
        },
    )
}

/// Takes `--data DIR`, `--config FILE` and `--plugin-dir DIR` (or `--x=V`) out of a plugin
/// command's arguments.
fn split_data_args(args: Vec<String>) -> Result<(DataArg, Vec<String>), String> {
    let mut data = DataArg {
        data: None,
        config: None,
        plugin_dir: None,
    };
    let mut rest = Vec::new();
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (a.clone(), None),
        };
        // A file named on the command line is read by the portal, which may run in another
        // folder (through the control socket): the value of `--…-file` and `--…-file-…`
        // (`--text-file`, `--text-file-cs`) is made absolute here.
        if flag.starts_with("--") && (flag.ends_with("-file") || flag.contains("-file-")) {
            let value = match inline {
                Some(v) => v,
                None => it.next().ok_or_else(|| format!("{flag} needs a value"))?,
            };
            let path = std::path::absolute(&value)
                .map_err(|e| format!("{flag} {value}: {e}"))?
                .to_string_lossy()
                .into_owned();
            rest.push(flag);
            rest.push(path);
            continue;
        }
        let slot = match flag.as_str() {
            "--data" => &mut data.data,
            "--config" => &mut data.config,
            "--plugin-dir" => &mut data.plugin_dir,
            _ => {
                rest.push(a);
                continue;
            }
        };
        let value = match inline {
            Some(v) => v,
            None => it.next().ok_or_else(|| format!("{flag} needs a value"))?,
        };
        *slot = Some(PathBuf::from(value));
    }
    Ok((data, rest))
}

fn portal_options(
    data: &Path,
    themes: Option<PathBuf>,
    plugin_dir: Option<PathBuf>,
) -> PortalOptions {
    PortalOptions {
        themes_dir: themes,
        dynamic: DynamicPlugins { dir: plugin_dir },
        ..PortalOptions::new(data, plugins::compiled_in())
    }
}

/// Opens the data folder directly, or returns `None` when a running portal holds it.
fn open_direct(cfg: &Config, may_create: bool) -> Result<Option<Portal>, String> {
    let data = cfg.data.as_path();
    if !may_create && !data.join("store").exists() {
        return Err(format!(
            "there is no Portico data folder at {} (give --data DIR, or create one with `portico import` or `portico serve`)",
            data.display()
        ));
    }
    // The themes folder lets `settings set ci_skin_theme` check the theme it is given.
    match Portal::open(portal_options(
        data,
        Some(cfg.themes.clone()),
        cfg.plugin_dir.clone(),
    )) {
        Ok(p) => Ok(Some(p)),
        Err(Error::StoreLocked { .. }) => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

/// Runs an operator request here, or on the running portal through its control socket.
fn operator(cfg: &Config, req: OpRequest) -> Result<(), String> {
    let data = cfg.data.as_path();
    match open_direct(cfg, false)? {
        Some(portal) => {
            let text = ops::execute(&portal, req).map_err(|e| e.to_string())?;
            say!("{}", text.trim_end());
            Ok(())
        }
        None => remote(data, req),
    }
}

fn remote(data: &Path, req: OpRequest) -> Result<(), String> {
    let reply = control::request(data, &req).map_err(|e| e.to_string())?;
    if reply.ok {
        say!("{}", reply.text.trim_end());
        Ok(())
    } else {
        Err(reply.text)
    }
}

fn import_with_progress(portal: &Portal, json: &str) -> Result<String, String> {
    let bar = indicatif::ProgressBar::hidden();
    let mut started = false;
    let result = ops::run_import(portal, json, &mut |done, total| {
        if !started && total >= 10_000 && std::io::stderr().is_terminal() {
            bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
            bar.set_length(total as u64);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{bar:40} {pos}/{len} records ({per_sec}, {eta} left)",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            started = true;
        }
        bar.set_position(done as u64);
    });
    bar.finish_and_clear();
    result.map_err(|e| e.to_string())
}

/// Reads a new password without echoing it.
fn read_new_password() -> Result<String, String> {
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("New password: ").map_err(|e| e.to_string())?;
        let second = rpassword::prompt_password("Repeat it: ").map_err(|e| e.to_string())?;
        if first != second {
            return Err("the two passwords differ; nothing was changed".into());
        }
        Ok(first)
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| e.to_string())?;
        let pw = line.trim_end_matches(['\n', '\r']).to_string();
        if pw.is_empty() {
            return Err("no password on standard input; nothing was changed".into());
        }
        Ok(pw)
    }
}

/// How long `theme check` lets one page render (the portal's default deadline).
const THEME_CHECK_DEADLINE: std::time::Duration = std::time::Duration::from_millis(250);

fn theme_check(
    themes_dir: &Path,
    plugin_dir: Option<PathBuf>,
    name: Option<&str>,
) -> Result<(), String> {
    let portal = Portal::assemble(
        Store::in_memory(),
        portal_options(Path::new(""), Some(themes_dir.to_path_buf()), plugin_dir),
    )
    .map_err(|e| e.to_string())?;
    let names = match name {
        Some(n) => vec![n.to_string()],
        None => portal.themes.available(),
    };
    // Every page template is rendered with the demo client's data, in every language.
    let samples = web::samples::collect_blocking(portal_options(Path::new(""), None, None))
        .map_err(|e| format!("cannot take the demo contexts to render with: {e}"))?;
    let mut failed = 0;
    for n in &names {
        let mut errors = portal.themes.refused_links(n);
        errors.extend(
            portal
                .themes
                .check_rendering(n, samples.clone(), THEME_CHECK_DEADLINE),
        );
        if errors.is_empty() {
            say!("{n}: ok");
        } else {
            failed += 1;
            say!("{n}: {} error(s)", errors.len());
            for e in errors {
                for line in e.lines() {
                    say!("  {line}");
                }
            }
        }
    }
    if failed > 0 {
        Err(format!("{failed} of {} theme(s) have errors", names.len()))
    } else {
        Ok(())
    }
}

fn serve(args: ServeArgs, defaults: Config, demo_mode: bool) -> Result<(), String> {
    let cfg = load_config(
        args.config.as_deref(),
        defaults,
        &Overrides {
            bind: args.bind,
            data: args.data,
            themes: args.themes,
            scripts: args.scripts,
            plugin_dir: args.plugin_dir,
        },
    )?;
    let started = std::time::Instant::now();
    let mut options = portal_options(&cfg.data, Some(cfg.themes.clone()), cfg.plugin_dir.clone());
    options.smtp_url = cfg.smtp_url.clone().filter(|u| !u.is_empty());
    options.trusted_proxies = cfg.trusted_proxies.clone();
    if !cfg.trusted_proxies.is_empty() {
        let list: Vec<String> = cfg.trusted_proxies.iter().map(|n| n.to_string()).collect();
        tracing::info!(
            "X-Forwarded-For and X-Real-IP are believed from {}",
            list.join(", ")
        );
    }
    options.secure_cookies = cfg.secure_cookies;
    options.dev_reload = args.dev;
    if args.dev {
        tracing::info!(
            "--dev: open pages reload themselves when the theme changes (events at /dev/theme-events)"
        );
    }
    if cfg.secure_cookies == SecureCookies::Off {
        tracing::warn!(
            "secure_cookies = false: session cookies are not marked Secure, so a browser also sends them over plain http; use it only when clients never reach the portal over https"
        );
    }
    #[cfg(debug_assertions)]
    if let Some(file) = args.test_clock_offset_file {
        options.clock = portico_core::internal::Clock::offset_by_file(file);
    }
    let portal = match Portal::open(options) {
        Ok(p) => p,
        Err(Error::StoreLocked { path }) => {
            return Err(format!(
                "the data folder {} is already used by another Portico process; stop it or choose another --data",
                path.display()
            ));
        }
        Err(e) => return Err(e.to_string()),
    };
    if demo_mode
        && portal
            .store
            .count::<portico_core::internal::model::Client>()
            .map_err(|e| e.to_string())?
            == 0
    {
        let report = demo::seed(&portal).map_err(|e| e.to_string())?;
        tracing::info!("demo data created in {}: {report}", cfg.data.display());
    }
    if portal.smtp_url.is_none() {
        tracing::warn!(
            "no smtp_url configured: password e-mails cannot be sent; they are retried for about 2 h 40 min, then listed as failed by `portico mail queue`"
        );
    }
    // The logins are printed only if this folder holds the demo ISP.
    let has_demo_logins = demo::LOGINS.iter().all(|l| {
        portal
            .store
            .client_by_username(l.username)
            .ok()
            .flatten()
            .is_some_and(|c| c.number == l.client_number)
    });
    if cfg.scripts.is_dir() {
        tracing::info!(dir = %cfg.scripts.display(), "scripts folder noted; Rhai scripting is not built yet, nothing loaded");
    }
    // The reloader renders a new theme version with demo contexts before it goes live; they
    // are taken off to the side from a private in-memory demo portal.
    let themes = portal.themes.clone();
    std::thread::spawn(move || {
        match web::samples::collect_blocking(portal_options(Path::new(""), None, None)) {
            Ok(samples) => {
                tracing::info!(
                    "theme edits are checked with {} demo renders",
                    samples.len()
                );
                themes.set_samples(samples);
            }
            Err(e) => tracing::warn!("theme edits go live without render checks: {e}"),
        }
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async move {
        let _watcher = portal.themes.watch().map_err(|e| e.to_string())?;
        let rocket = web::build(portal, web::rocket_config(cfg.bind));
        let rocket = rocket.attach(AdHoc::on_liftoff("announce", move |r| {
            Box::pin(async move {
                let addr = r.config().address;
                let port = r.config().port;
                if let Some(portal) = r.state::<Arc<Portal>>() {
                    let p = portal.clone();
                    tokio::spawn(async move {
                        if let Err(e) = control::serve(p).await {
                            tracing::error!("{e}");
                        }
                    });
                    tokio::spawn(portico_core::internal::mail::run_worker(portal.clone()));
                    portico_core::internal::registry::start_workers(portal);
                    tokio::spawn(portico_core::internal::audit::run_housekeeping(
                        portal.clone(),
                    ));
                }
                let host = if addr.is_unspecified() {
                    "127.0.0.1".to_string()
                } else {
                    addr.to_string()
                };
                let mut out = std::io::stdout().lock();
                let _ = writeln!(
                    out,
                    "Portico is serving at http://{host}:{port}/  (ready in {} ms)",
                    started.elapsed().as_millis()
                );
                if demo_mode && has_demo_logins {
                    let _ = writeln!(out, "Demo logins (client number or login name / password):");
                    for l in demo::LOGINS {
                        let _ = writeln!(
                            out,
                            "  {} or {}  /  {}",
                            l.client_number, l.username, l.password
                        );
                    }
                }
                let _ = out.flush();
            })
        }));
        let rocket = rocket
            .launch()
            .await
            .map_err(|e| format!("cannot serve on {}: {e}", cfg.bind))?;
        if let Some(portal) = rocket.state::<Arc<Portal>>() {
            portal.store.flush().map_err(|e| e.to_string())?;
        }
        Ok(())
    })
}
