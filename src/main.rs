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
    Serve {
        #[command(flatten)]
        args: ServeArgs,
        /// Create a new, empty store when the data folder holds none (without it, such a folder
        /// is refused: it is usually a wrong --data or an unmounted disk).
        #[arg(long)]
        init: bool,
    },
    /// Import (upsert) a JSON bundle from the billing system; see docs/import.md.
    Import {
        /// The bundle file.
        file: PathBuf,
        /// Make each collection the bundle holds exactly the bundle's content: stored records
        /// it leaves out are deleted, a client with everything that hangs on them.
        #[arg(long)]
        sync: bool,
        /// Check the bundle and print what the import would do; change nothing.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        data: DataArg,
    },
    /// Write a consistent snapshot of the store to FILE (through the running portal, or directly
    /// when none runs); see docs/backup.md.
    Backup {
        /// The backup file to write (replaced atomically if it exists; mode 0600).
        file: PathBuf,
        #[command(flatten)]
        data: DataArg,
    },
    /// Bring a backup back into a new or empty data folder (never over an existing store).
    Restore {
        /// The backup file (from `portico backup`).
        file: PathBuf,
        /// The new data folder: must not exist yet, or be empty.
        #[arg(long, value_name = "DIR", required = true)]
        data: PathBuf,
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
    /// Suspend the portal: every page shows your message (503) until `portico resume`
    ///
    /// Every client page and the login page show the message with the theme, status 503, and
    /// /healthz says `"suspended":true`. Unlike maintenance mode, the clients read why.
    Suspend {
        /// What the clients see (plain text).
        #[arg(long)]
        message: String,
        #[command(flatten)]
        data: DataArg,
    },
    /// End a suspension (`portico suspend`).
    Resume {
        #[command(flatten)]
        data: DataArg,
    },
    /// Custom buttons: your own links in the portal menu.
    Menu {
        #[command(subcommand)]
        action: MenuAction,
        #[command(flatten)]
        data: DataArg,
    },
    /// Files for the clients (the Files tab): add, list, remove.
    Files {
        #[command(subcommand)]
        action: FilesAction,
        #[command(flatten)]
        data: DataArg,
    },
    /// Clients' changes of their contact data waiting for approval
    /// (ci_client_data_change_approval): list, approve, reject.
    Changes {
        #[command(subcommand)]
        action: ChangesAction,
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
    /// Operator scripts (Rhai): their state, and a compile check.
    Scripts {
        #[command(subcommand)]
        action: ScriptsAction,
        #[command(flatten)]
        data: DataArg,
    },
    /// A command a plugin adds (`portico <command> ARGS...`; `portico plugins list` shows them).
    #[command(external_subcommand)]
    External(Vec<String>),
    /// The audit log: logins, failures, lockouts, resets and every operator command that
    /// changed something, with the OS user who ran it.
    Audit {
        /// Only this client (number, login name or #ID).
        #[arg(long)]
        client: Option<String>,
        /// Only events of this kind (as printed, e.g. LoginFailed or login_failed).
        #[arg(long, value_name = "KIND")]
        kind: Option<String>,
        /// Only events from this day (YYYY-MM-DD) or time (YYYY-MM-DD HH:MM) on, UTC.
        #[arg(long, value_name = "DATE")]
        since: Option<String>,
        /// Only events up to this day (inclusive) or before this time, UTC.
        #[arg(long, value_name = "DATE")]
        until: Option<String>,
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
enum ChangesAction {
    /// The changes waiting for approval, with their ids and the old and new values.
    List,
    /// Apply a change to the client's data (checked again first).
    Approve {
        /// The change's id (`portico changes list`).
        id: u64,
    },
    /// Refuse a change; the client sees that it was rejected, and why.
    Reject {
        /// The change's id (`portico changes list`).
        id: u64,
        /// Why, in one line (shown to the client).
        #[arg(long)]
        reason: Option<String>,
    },
}

#[derive(Subcommand)]
enum FilesAction {
    /// Copy a file into the data folder and offer it on the Files tab.
    Add {
        /// The file (the copy stays when the original goes away).
        path: PathBuf,
        /// Its title on the tab (default: its file name).
        #[arg(long)]
        title: Option<String>,
        /// Show it only to the clients of this invoice group (its id).
        #[arg(long = "invoice-group")]
        invoice_group: Option<u64>,
    },
    /// List the files with their ids.
    List,
    /// Remove a file (and its copy).
    Remove {
        /// The file's id (`portico files list`).
        id: u64,
    },
}

#[derive(Subcommand)]
enum MenuAction {
    /// Add a button (a link) to the menu; it shows at the next page, no restart needed.
    Add {
        /// The label (English, and any language without its own).
        #[arg(long)]
        label: String,
        /// The label in Czech.
        #[arg(long = "label-cs")]
        label_cs: Option<String>,
        /// An http://, https:// or mailto: address.
        #[arg(long)]
        url: String,
        /// Open the link in a new browser tab.
        #[arg(long = "new-tab")]
        new_tab: bool,
        /// Position among the tabs, lower first (Information 10, Services 20, Password 80,
        /// Webmail 900; default 500).
        #[arg(long, allow_negative_numbers = true)]
        order: Option<i32>,
        /// Show it only to the clients of this invoice group (its id).
        #[arg(long = "invoice-group")]
        invoice_group: Option<u64>,
    },
    /// List the buttons with their ids.
    List,
    /// Remove a button.
    Remove {
        /// The button's id (`portico menu list`).
        id: u64,
    },
}

#[derive(Subcommand)]
enum ScriptsAction {
    /// Each script, the hooks it handles, its state (active, compile error, disabled), calls,
    /// failures, mean and max time.
    Status,
    /// Compile a script file without loading it; list the hooks it handles.
    Check {
        /// The .rhai file.
        file: PathBuf,
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
    /// Send a mail again now: a failed one gets a fresh round of attempts.
    Retry {
        /// The outbox id (`portico mail queue` shows it as #ID).
        id: u64,
    },
    /// Take a mail out of the outbox unsent.
    Cancel {
        /// The outbox id (`portico mail queue` shows it as #ID).
        id: u64,
    },
    /// Delete mail given up after its retries.
    Purge {
        /// Only failed mail (required: mail still waiting is cancelled one by one).
        #[arg(long)]
        failed: bool,
        /// Only mail queued more than this many days ago.
        #[arg(long, value_name = "DAYS")]
        older_than: Option<u32>,
    },
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
    /// Operator scripts folder: every *.rhai file in it runs (default: ./scripts when it exists).
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
    /// For tests only: reopen the store after an operator command once N records were
    /// written (the default is a bulk import's size). Debug builds only.
    #[cfg(debug_assertions)]
    #[arg(long, value_name = "N", hide = true)]
    test_release_memory_after: Option<u64>,
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
    /// Operator scripts folder, when no portal runs (default: scripts_dir of the configuration).
    #[arg(long, value_name = "DIR", global = true)]
    scripts: Option<PathBuf>,
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

/// Makes mimalloc return what the calling thread freed to the system now: after the store's
/// reopen following a bulk import, the memory the import's thread allocated would otherwise
/// stay resident until that thread allocates again (`PortalOptions::give_back_memory`).
#[allow(unsafe_code)]
fn give_back_memory() {
    // SAFETY: `mi_collect` takes no pointers and only walks mimalloc's own structures, which
    // any thread may ask it to do at any time.
    unsafe { libmimalloc_sys::mi_collect(true) }
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
            serve(args, defaults, Mode::Demo)
        }
        Command::Serve { args, init } => serve(
            args,
            Config::default(),
            if init { Mode::Init } else { Mode::Existing },
        ),
        Command::Import {
            file,
            sync,
            dry_run,
            data,
        } => {
            let cfg = operator_config(&data)?;
            let json =
                std::fs::read(&file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
            let json = String::from_utf8(json)
                .map_err(|_| format!("{} is not UTF-8 text", file.display()))?;
            // A folder that holds no store yet: the bundle is first tried as a dry run against
            // an empty store with every plugin (so their sections, such as `traffic`, are
            // known), and a rejected bundle leaves no new, empty data folder behind. A dry run
            // ends there: nothing is created.
            if !cfg.data.join("store").exists() {
                let portal = Portal::assemble(
                    Store::in_memory(),
                    portal_options(Path::new(""), None, cfg.plugin_dir.clone()),
                )
                .map_err(|e| e.to_string())?;
                let trial = OpRequest::Import {
                    json: json.clone(),
                    sync,
                    dry_run: true,
                };
                let text = ops::execute(&portal, trial).map_err(|e| e.to_string())?;
                if dry_run {
                    say!("{text}");
                    return Ok(());
                }
            }
            let req = OpRequest::Import {
                json,
                sync,
                dry_run,
            };
            match open_direct(&cfg, true)? {
                Some(portal) => {
                    let text = import_with_progress(&portal, req)?;
                    say!("{text}");
                    Ok(())
                }
                None => {
                    eprintln!(
                        "a portal is running on {}; sending the bundle to it",
                        cfg.data.display()
                    );
                    remote(&cfg.data, req)
                }
            }
        }
        Command::Backup { file, data } => {
            let cfg = operator_config(&data)?;
            // The portal may run in another folder: it gets the file's absolute path.
            let path = std::path::absolute(&file)
                .map_err(|e| format!("{}: {e}", file.display()))?
                .to_string_lossy()
                .into_owned();
            let req = OpRequest::Backup { path: path.clone() };
            let text = match open_direct(&cfg, false)? {
                Some(portal) => ops::execute(&portal, req).map_err(|e| e.to_string())?,
                None => {
                    let reply = control::request(&cfg.data, &req).map_err(|e| e.to_string())?;
                    if !reply.ok {
                        return Err(reply.text);
                    }
                    reply.text
                }
            };
            // A portal under systemd may see another /tmp (PrivateTmp) or a read-only tree:
            // a file it wrote where the operator cannot see it is no backup.
            if Path::new(&path).is_file() {
                say!("{}", text.trim_end());
            } else {
                return Err(format!(
                    "the portal wrote {path}, but it is not there for this command: the portal runs in a file-system namespace of its own (systemd's PrivateTmp, for one). Write backups to a folder both can see, such as /var/lib/portico-backups with contrib/portico.service (docs/backup.md)."
                ));
            }
            Ok(())
        }
        Command::Restore { file, data } => {
            init_logging("warn");
            let started = std::time::Instant::now();
            let info =
                portico_core::internal::backup::restore(&file, &data).map_err(|e| e.to_string())?;
            say!(
                "restored {} into {} in {} ms: {}",
                file.display(),
                data.display(),
                started.elapsed().as_millis(),
                info.describe()
            );
            say!(
                "start the portal on it with `portico serve --data {}`",
                data.display()
            );
            Ok(())
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
        Command::Suspend { message, data } => {
            let cfg = operator_config(&data)?;
            operator(&cfg, OpRequest::Suspend { message })
        }
        Command::Resume { data } => {
            let cfg = operator_config(&data)?;
            operator(&cfg, OpRequest::Resume)
        }
        Command::Menu { action, data } => {
            let cfg = operator_config(&data)?;
            let req = match action {
                MenuAction::Add {
                    label,
                    label_cs,
                    url,
                    new_tab,
                    order,
                    invoice_group,
                } => OpRequest::MenuAdd {
                    button: portico_core::internal::menu::NewButton {
                        label,
                        label_cs,
                        url,
                        new_tab,
                        order,
                        invoice_group,
                    },
                },
                MenuAction::List => OpRequest::MenuList,
                MenuAction::Remove { id } => OpRequest::MenuRemove { id },
            };
            operator(&cfg, req)
        }
        Command::Files { action, data } => {
            let cfg = operator_config(&data)?;
            let req = match action {
                FilesAction::Add {
                    path,
                    title,
                    invoice_group,
                } => OpRequest::FilesAdd {
                    file: portico_core::internal::files::NewFile {
                        // The portal may run in another folder: it gets the whole path.
                        path: std::path::absolute(&path)
                            .map_err(|e| format!("{}: {e}", path.display()))?,
                        title,
                        invoice_group,
                    },
                },
                FilesAction::List => OpRequest::FilesList,
                FilesAction::Remove { id } => OpRequest::FilesRemove { id },
            };
            operator(&cfg, req)
        }
        Command::Changes { action, data } => {
            let cfg = operator_config(&data)?;
            let req = match action {
                ChangesAction::List => OpRequest::ChangesList,
                ChangesAction::Approve { id } => OpRequest::ChangesApprove { id },
                ChangesAction::Reject { id, reason } => OpRequest::ChangesReject { id, reason },
            };
            operator(&cfg, req)
        }
        Command::Maintenance { state, data } => {
            let cfg = operator_config(&data)?;
            operator(&cfg, OpRequest::Maintenance { on: state })
        }
        Command::Mail { action, data } => {
            let cfg = operator_config(&data)?;
            let req = match action {
                MailAction::Queue => OpRequest::MailQueue,
                MailAction::Retry { id } => OpRequest::MailRetry { id },
                MailAction::Cancel { id } => OpRequest::MailCancel { id },
                MailAction::Purge { failed, older_than } => OpRequest::MailPurge {
                    failed,
                    older_than_days: older_than,
                },
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
        Command::Scripts {
            action: ScriptsAction::Status,
            data,
        } => operator(&operator_config(&data)?, OpRequest::ScriptsStatus),
        Command::Scripts {
            action: ScriptsAction::Check { file },
            data,
        } => {
            let bytes =
                std::fs::read(&file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
            let source = String::from_utf8(bytes)
                .map_err(|_| format!("{} is not UTF-8 text", file.display()))?;
            let req = OpRequest::ScriptsCheck {
                file: file.display().to_string(),
                source,
            };
            let cfg = operator_config(&data)?;
            if cfg.data.join("store").exists() {
                operator(&cfg, req)
            } else {
                // No data folder: check against the compiled-in plugins' hooks.
                let options = portal_options(Path::new(""), None, cfg.plugin_dir.clone());
                let portal =
                    Portal::assemble(Store::in_memory(), options).map_err(|e| e.to_string())?;
                let text = ops::execute(&portal, req).map_err(|e| e.to_string())?;
                say!("{}", text.trim_end());
                Ok(())
            }
        }
        Command::External(args) => {
            // Plugin commands take the usual --data/--config/--plugin-dir anywhere.
            let (data, args) = split_data_args(args)?;
            let cwd = std::env::current_dir()
                .ok()
                .map(|d| d.display().to_string());
            operator(
                &operator_config(&data)?,
                OpRequest::PluginCommand { args, cwd },
            )
        }
        Command::Audit {
            client,
            kind,
            since,
            until,
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
                    kind,
                    since,
                    until,
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
            scripts_dir: data.scripts.clone(),
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
        scripts: None,
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
            "--scripts" => &mut data.scripts,
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
        give_back_memory: Some(give_back_memory),
        ..PortalOptions::new(data, plugins::compiled_in())
    }
}

/// The scripts folder to load: `scripts_dir` when it exists. A folder that was asked for but is
/// missing is warned about (the default `./scripts` only when `warn_default`).
fn scripts_dir(cfg: &Config, warn_default: bool) -> Option<PathBuf> {
    if cfg.scripts_dir.is_dir() {
        return Some(cfg.scripts_dir.clone());
    }
    if warn_default || cfg.scripts_dir != Path::new("scripts") {
        tracing::warn!(dir = %cfg.scripts_dir.display(), "scripts folder not found; no scripts loaded");
    }
    None
}

/// Opens the data folder directly, or returns `None` when a running portal holds it.
fn open_direct(cfg: &Config, may_create: bool) -> Result<Option<Portal>, String> {
    let data = cfg.data.as_path();
    if !may_create && !data.join("store").exists() {
        return Err(format!(
            "there is no Portico data folder at {} (give --data DIR, or create one with `portico import`, `portico restore` or `portico serve --init`)",
            data.display()
        ));
    }
    // The themes folder lets `settings set ci_skin_theme` check the theme it is given; the
    // scripts handle the hooks of operator commands as they do in a running portal.
    let mut options = portal_options(data, Some(cfg.themes.clone()), cfg.plugin_dir.clone());
    options.scripts_dir = scripts_dir(cfg, false);
    options.store_cache_bytes = cfg.store_cache_mb * 1024 * 1024;
    match Portal::open(options) {
        Ok(p) => Ok(Some(p)),
        Err(Error::StoreLocked { .. }) => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

/// Runs an operator request here, or on the running portal through its control socket.
fn operator(cfg: &Config, req: OpRequest) -> Result<(), String> {
    let data = cfg.data.as_path();
    let long = matches!(req, OpRequest::PluginCommand { .. });
    match open_direct(cfg, false)? {
        Some(portal) if long => {
            let text = import_with_progress(&portal, req)?;
            say!("{}", text.trim_end());
            Ok(())
        }
        Some(portal) => {
            let text = ops::execute(&portal, req).map_err(|e| e.to_string())?;
            say!("{}", text.trim_end());
            Ok(())
        }
        None if long => {
            let mut bar = ProgressBar::new();
            let reply = control::request_with_progress(data, &req, &mut |d, t| bar.show(d, t))
                .map_err(|e| e.to_string());
            bar.done();
            let reply = reply?;
            if reply.ok {
                say!("{}", reply.text.trim_end());
                Ok(())
            } else {
                Err(reply.text)
            }
        }
        None => remote(data, req),
    }
}

/// A progress bar on stderr (when it is a terminal) for a long operator command, in percent.
struct ProgressBar {
    bar: indicatif::ProgressBar,
    started: bool,
}

impl ProgressBar {
    fn new() -> Self {
        ProgressBar {
            bar: indicatif::ProgressBar::hidden(),
            started: false,
        }
    }

    fn show(&mut self, done: usize, total: usize) {
        if !self.started && total > 0 && std::io::stderr().is_terminal() {
            self.bar
                .set_draw_target(indicatif::ProgressDrawTarget::stderr());
            self.bar.set_length(total as u64);
            self.bar.set_style(
                indicatif::ProgressStyle::with_template("{bar:40} {percent:>3} % ({eta} left)")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            self.started = true;
        }
        self.bar.set_position(done as u64);
    }

    fn done(&self) {
        self.bar.finish_and_clear();
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

fn import_with_progress(portal: &Portal, req: OpRequest) -> Result<String, String> {
    if matches!(req, OpRequest::PluginCommand { .. }) {
        let mut bar = ProgressBar::new();
        let who = ops::Operator::current();
        let result = ops::execute_with_progress(portal, req, &who, &mut |d, t| bar.show(d, t));
        bar.done();
        return result.map_err(|e| e.to_string());
    }
    let bar = indicatif::ProgressBar::hidden();
    let mut started = false;
    let who = ops::Operator::current();
    let result = ops::execute_with_progress(portal, req, &who, &mut |done, total| {
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

/// Set when the portal is up and serving (Rocket's liftoff).
static SERVED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// How `serve` treats a data folder without a store.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// `portico serve`: refuse it.
    Existing,
    /// `portico serve --init`: create an empty store.
    Init,
    /// `portico demo`: create a store with the demo ISP.
    Demo,
}

fn serve(args: ServeArgs, defaults: Config, mode: Mode) -> Result<(), String> {
    let cfg = load_config(
        args.config.as_deref(),
        defaults,
        &Overrides {
            bind: args.bind,
            data: args.data.clone(),
            themes: args.themes.clone(),
            scripts_dir: args.scripts.clone(),
            plugin_dir: args.plugin_dir.clone(),
        },
    )?;
    let data = cfg.data.clone();
    let has_store = data.join("store").is_dir();
    if !has_store && mode == Mode::Existing {
        return Err(format!(
            "there is no Portico store in {dir}. Check --data (or `data` in the configuration). To start a new, empty portal there, run `portico serve --init --data {dir}`; to bring back a backup, `portico restore FILE --data {dir}`; `portico import BUNDLE --data {dir}` also creates one.",
            dir = data.display()
        ));
    }
    // What this start creates, so a start that fails leaves nothing new behind.
    let created = if has_store {
        Vec::new()
    } else if data.exists() {
        vec![data.join("store"), Portal::control_socket_path(&data)]
    } else {
        // The topmost folder of the path that does not exist yet.
        let absolute =
            std::path::absolute(&data).map_err(|e| format!("{}: {e}", data.display()))?;
        let mut top = absolute.clone();
        while let Some(parent) = top.parent() {
            if parent.exists() {
                break;
            }
            top = parent.to_path_buf();
        }
        vec![top]
    };
    let result = run_server(args, cfg, mode);
    // Only a start that failed: once the portal served, its store is the operator's.
    if result.is_err() && !SERVED.load(std::sync::atomic::Ordering::SeqCst) {
        for path in &created {
            let gone = if path.is_dir() {
                std::fs::remove_dir_all(path)
            } else {
                std::fs::remove_file(path)
            };
            if let Err(e) = gone
                && e.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!(
                    "could not remove {} after the failed start: {e}",
                    path.display()
                );
            }
        }
    }
    result
}

/// Opens the store and serves until shutdown. The caller removes what a failed start created.
fn run_server(args: ServeArgs, cfg: Config, mode: Mode) -> Result<(), String> {
    let demo_mode = mode == Mode::Demo;
    let started = std::time::Instant::now();
    if let Some(url) = cfg.smtp_url.as_deref().filter(|u| !u.is_empty()) {
        config::check_smtp_url(url)?;
    }
    let mut options = portal_options(&cfg.data, Some(cfg.themes.clone()), cfg.plugin_dir.clone());
    options.store_cache_bytes = cfg.store_cache_mb * 1024 * 1024;
    options.page_cache_bytes = cfg.page_cache_mb * 1024 * 1024;
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
    options.scripts_dir = scripts_dir(&cfg, false);
    // The demo ships an example script, in its data folder, unless scripts_dir exists.
    let demo_scripts = cfg.data.join("scripts");
    if demo_mode && options.scripts_dir.is_none() {
        if !cfg.data.join("store").exists() {
            demo::write_scripts(&demo_scripts).map_err(|e| e.to_string())?;
        }
        if demo_scripts.is_dir() {
            options.scripts_dir = Some(demo_scripts);
        }
    }
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
    #[cfg(debug_assertions)]
    if let Some(writes) = args.test_release_memory_after {
        options.release_memory_after_writes = writes;
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
    let mut demo_created = None;
    if demo_mode
        && portal
            .store
            .count::<portico_core::internal::model::Client>()
            .map_err(|e| e.to_string())?
            == 0
    {
        let summary = demo::seed(&portal).map_err(|e| e.to_string())?;
        tracing::info!("demo data created in {}: {summary}", cfg.data.display());
        demo_created = Some(summary);
    }
    if portal.smtp_url.is_none() {
        tracing::warn!(
            "no smtp_url configured: password e-mails cannot be sent; they are retried for about 2 h 40 min, then listed as failed by `portico mail queue`"
        );
    }
    // The logins are printed only if this folder holds the demo ISP, and a password only while
    // it still works.
    let demo_logins = if demo_mode {
        demo::logins(&portal.store)
    } else {
        None
    };
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
        // The private demo portal is gone: its memory goes back to the system now, not when
        // (if ever) mimalloc reuses this thread's pages.
        give_back_memory();
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let result = runtime.block_on(async move {
        let _watcher = portal.themes.watch().map_err(|e| e.to_string())?;
        let _script_watcher = portal.scripts.watch().map_err(|e| e.to_string())?;
        let rocket = web::build(portal, web::rocket_config(cfg.bind));
        let rocket = rocket.attach(AdHoc::on_liftoff("announce", move |r| {
            Box::pin(async move {
                SERVED.store(true, std::sync::atomic::Ordering::SeqCst);
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
                if let Some(summary) = &demo_created {
                    let _ = writeln!(out, "Demo ISP created: {summary}");
                }
                if let Some(logins) = &demo_logins {
                    let _ = writeln!(out, "Demo logins (client number or login name / password):");
                    for (l, works) in logins {
                        if *works {
                            let _ = writeln!(
                                out,
                                "  {} or {}  /  {}",
                                l.client_number, l.username, l.password
                            );
                        } else {
                            let _ = writeln!(
                                out,
                                "  {} or {}  /  (the demo password no longer works: it was changed in this folder)",
                                l.client_number, l.username
                            );
                        }
                    }
                }
                let _ = out.flush();
            })
        }));
        let rocket = rocket
            .launch()
            .await
            .map_err(|e| format!("cannot serve on {}: {e}", cfg.bind))?;
        // A clean shutdown (SIGTERM, Ctrl-C): requests have been answered or cut off after
        // the grace period. Operator commands now find no socket rather than a dead one.
        let socket = Portal::control_socket_path(&cfg.data);
        if let Err(e) = std::fs::remove_file(&socket)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(
                "could not remove the control socket {}: {e}",
                socket.display()
            );
        }
        if let Some(portal) = rocket.state::<Arc<Portal>>() {
            portal.store.flush().map_err(|e| e.to_string())?;
            tracing::info!("{}", portal.page_cache.summary());
        }
        tracing::info!(
            "Portico stopped after {} s: store flushed, control socket removed",
            started.elapsed().as_secs()
        );
        Ok::<(), String>(())
    });
    // An operator command or a mail still running on a blocking thread gets a moment, not a
    // veto over the shutdown.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    portico_core::internal::backup::abandon_unfinished();
    result
}
