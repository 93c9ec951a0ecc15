//! Themes: Tera templates and static files found through a lookup chain
//! (active theme → its parents → plugin defaults → core defaults compiled into the binary).
//!
//! Each theme's engine is built off to the side and swapped in only when every template parses,
//! so a bad edit never reaches clients: the last good engine keeps serving and the error is
//! logged with file and line. Templates see only their context: Tera 2 has no environment
//! access, and we register nothing that reads files, environment or the store.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rust_embed::RustEmbed;

use crate::error::{Error, Result};
use crate::i18n::I18n;

/// The shipped default theme, compiled in so the portal renders even without a themes folder.
#[derive(RustEmbed)]
#[folder = "../themes/default/"]
struct CoreDefault;

pub const DEFAULT_THEME: &str = "default";
const MAX_CHAIN: usize = 8;

/// A theme's `theme.toml`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThemeManifest {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub extends: Option<String>,
}

/// One built theme: its Tera instance and the chain of theme folders it was built from.
pub struct Engine {
    pub name: String,
    pub chain: Vec<String>,
    tera: tera::Tera,
}

/// Plugin contributions that sit between themes and core defaults.
#[derive(Default, Clone)]
pub struct Builtins {
    /// (owner, template name, source)
    pub templates: Vec<(&'static str, String, Cow<'static, str>)>,
    pub assets: Vec<(String, Cow<'static, [u8]>)>,
}

pub struct Themes {
    dir: Option<PathBuf>,
    builtins: Builtins,
    i18n: Arc<I18n>,
    engines: RwLock<HashMap<String, Arc<Engine>>>,
    /// Built from compiled-in templates only: the fallback when a theme's template fails to render.
    safe: Arc<Engine>,
}

pub fn valid_theme_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// A relative path inside a theme folder with no way out of it.
pub(crate) fn safe_relative(path: &str) -> Option<&str> {
    let ok = !path.is_empty()
        && !path.starts_with('/')
        && !path.contains('\\')
        && !path.contains('\0')
        && path
            .split('/')
            .all(|seg| !seg.is_empty() && !seg.starts_with('.'));
    ok.then_some(path)
}

/// Editor droppings and hidden files that must not trigger or take part in a reload.
pub fn is_temp_file(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    name.starts_with('.')
        || name.starts_with('#')
        || name.ends_with('~')
        || name.ends_with(".swp")
        || name.ends_with(".swx")
        || name.ends_with(".tmp")
}

fn register_functions(tera: &mut tera::Tera, i18n: Arc<I18n>) {
    // `t(key="...", name=value...)`: a translated message in the page's `lang`.
    tera.register_function("t", move |kwargs: tera::Kwargs, state: &tera::State| {
        let key: &str = kwargs.must_get::<&str>("key")?;
        let lang = state.get::<String>("lang")?;
        let lang = lang.as_deref().unwrap_or(crate::i18n::FALLBACK);
        let args: Vec<(String, String)> = kwargs
            .iter()
            .filter(|(k, _)| k.as_str() != Some("key"))
            .map(|(k, v)| {
                (
                    k.to_string(),
                    v.as_str().map_or_else(|| v.to_string(), str::to_string),
                )
            })
            .collect();
        if args.is_empty() {
            return tera::TeraResult::Ok(i18n.t(lang, key));
        }
        let args: Vec<(&str, String)> = args.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        tera::TeraResult::Ok(i18n.text(lang, key, &args))
    });
}

impl Themes {
    pub fn new(dir: Option<PathBuf>, builtins: Builtins, i18n: Arc<I18n>) -> Result<Self> {
        let safe = Arc::new(
            build_engine(None, DEFAULT_THEME, &builtins, &i18n).map_err(|e| {
                Error::Template(format!(
                    "compiled-in templates do not build: {}",
                    e.join("\n")
                ))
            })?,
        );
        Ok(Themes {
            dir,
            builtins,
            i18n,
            engines: RwLock::new(HashMap::new()),
            safe,
        })
    }

    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// Names of theme folders present on disk.
    pub fn available(&self) -> Vec<String> {
        let mut names = vec![];
        if let Some(dir) = &self.dir
            && let Ok(rd) = std::fs::read_dir(dir)
        {
            for e in rd.flatten() {
                let n = e.file_name().to_string_lossy().to_string();
                if e.path().is_dir() && valid_theme_name(&n) {
                    names.push(n);
                }
            }
        }
        if !names.iter().any(|n| n == DEFAULT_THEME) {
            names.push(DEFAULT_THEME.into());
        }
        names.sort();
        names
    }

    /// The engine for a theme, building it on first use. An unknown or broken theme falls back
    /// to the compiled-in default so clients always get a page.
    pub fn engine(&self, theme: &str) -> Arc<Engine> {
        if let Some(e) = self.engines.read().ok().and_then(|m| m.get(theme).cloned()) {
            return e;
        }
        match self.build(theme) {
            Ok(engine) => {
                let engine = Arc::new(engine);
                if let Ok(mut m) = self.engines.write() {
                    m.insert(theme.to_string(), engine.clone());
                }
                engine
            }
            Err(errors) => {
                for e in &errors {
                    tracing::error!(theme, "theme does not build: {e}");
                }
                // Remember the fallback so a broken theme is not rebuilt on every request;
                // the watcher retries after the next edit.
                if let Ok(mut m) = self.engines.write() {
                    m.insert(theme.to_string(), self.safe.clone());
                }
                self.safe.clone()
            }
        }
    }

    fn build(&self, theme: &str) -> std::result::Result<Engine, Vec<String>> {
        if !valid_theme_name(theme) {
            return Err(vec![format!(
                "`{theme}` is not a theme name (lowercase letters, digits, - and _)"
            )]);
        }
        build_engine(self.dir.as_deref(), theme, &self.builtins, &self.i18n)
    }

    /// Builds a theme without installing it; returns every error with file and line.
    pub fn check(&self, theme: &str) -> Vec<String> {
        match self.build(theme) {
            Ok(_) => vec![],
            Err(e) => e,
        }
    }

    /// Rebuilds every theme in use; a theme that fails keeps its last good engine.
    pub fn reload(&self) {
        let names: Vec<String> = match self.engines.read() {
            Ok(m) => m.keys().cloned().collect(),
            Err(_) => return,
        };
        for name in names {
            match self.build(&name) {
                Ok(engine) => {
                    if let Ok(mut m) = self.engines.write() {
                        m.insert(name.clone(), Arc::new(engine));
                    }
                    tracing::info!(theme = %name, "theme reloaded");
                }
                Err(errors) => {
                    for e in errors {
                        tracing::error!(theme = %name, "edit not applied, last good version still serving: {e}");
                    }
                }
            }
        }
    }

    /// Renders a page. If the theme's template fails at render time, the compiled-in template of
    /// the same name is used instead and the failure is logged.
    pub fn render(&self, theme: &str, template: &str, ctx: &tera::Context) -> Result<String> {
        let engine = self.engine(theme);
        match engine.tera.render(template, ctx) {
            Ok(html) => Ok(html),
            Err(e) => {
                tracing::error!(
                    theme,
                    template,
                    "render failed, using built-in template: {}",
                    describe(&e)
                );
                self.safe
                    .tera
                    .render(template, ctx)
                    .map_err(|e| Error::Template(describe(&e)))
            }
        }
    }

    /// A static file for a theme: the theme's own, a parent's, a plugin's, or core's. A file on
    /// disk must lie inside its theme's own `static/` folder once symlinks are resolved: one that
    /// leads out (to `/etc/passwd`, the data folder, another theme) is refused with a log line,
    /// and the request gets nothing (404), not a parent's file.
    pub fn asset(&self, theme: &str, path: &str) -> Option<Cow<'static, [u8]>> {
        let path = safe_relative(path)?;
        let engine = self.engine(theme);
        if let Some(dir) = &self.dir {
            for t in &engine.chain {
                let file = dir.join(t).join("static").join(path);
                let Ok(real) = std::fs::canonicalize(&file) else {
                    continue;
                };
                if let Err(reason) = inside_theme(dir, t, "static", &real) {
                    tracing::warn!(theme = %t, file = %file.display(), "refused: {reason}");
                    return None;
                }
                if let Ok(bytes) = std::fs::read(&real) {
                    return Some(Cow::Owned(bytes));
                }
            }
        }
        if let Some((_, bytes)) = self.builtins.assets.iter().rev().find(|(p, _)| p == path) {
            return Some(bytes.clone());
        }
        CoreDefault::get(&format!("static/{path}")).map(|f| f.data)
    }

    /// Every symlink in the theme's chain (its own folder and its parents') that leads out of
    /// the folder it is in, as `path: reason`. Such files are never served or loaded;
    /// `portico theme check` reports them as errors.
    pub fn refused_links(&self, theme: &str) -> Vec<String> {
        let Some(dir) = self.dir.as_deref() else {
            return vec![];
        };
        let Ok(chain) = theme_chain(Some(dir), theme) else {
            // `check` reports a broken chain.
            return vec![];
        };
        let mut out = vec![];
        for t in &chain {
            for sub in ["templates", "static"] {
                for (path, reason) in walk_theme_folder(dir, t, sub).refused {
                    out.push(format!("{}: {reason}", path.display()));
                }
            }
        }
        out
    }

    /// Watches the themes folder and reloads on template changes. CSS and images need no reload:
    /// they are read from disk on every request. Returns the watcher, which must be kept alive.
    pub fn watch(self: &Arc<Self>) -> Result<Option<ThemeWatcher>> {
        use notify::Watcher as _;
        let Some(dir) = self.dir.clone() else {
            return Ok(None);
        };
        if !dir.is_dir() {
            tracing::warn!(dir = %dir.display(), "themes folder not found; using compiled-in default theme only");
            return Ok(None);
        }
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            if let Ok(event) = res
                && is_edit(&event.kind)
                && event.paths.iter().any(|p| needs_rebuild(p))
            {
                let _ = tx.send(());
            }
        })
        .map_err(|e| Error::Internal(format!("cannot watch themes: {e}")))?;
        watcher
            .watch(&dir, notify::RecursiveMode::Recursive)
            .map_err(|e| Error::Internal(format!("cannot watch {}: {e}", dir.display())))?;
        let themes = Arc::clone(self);
        std::thread::spawn(move || {
            // An editor's save is several events: rebuild once they have been quiet for a moment.
            // The thread ends when the watcher (the sender) is dropped.
            while rx.recv().is_ok() {
                while rx.recv_timeout(Duration::from_millis(100)).is_ok() {}
                themes.reload();
            }
        });
        tracing::info!(dir = %dir.display(), "watching themes for changes");
        Ok(Some(ThemeWatcher { _watcher: watcher }))
    }
}

/// Keeps the themes folder watched; dropping it stops the watching.
pub struct ThemeWatcher {
    _watcher: notify::RecommendedWatcher,
}

/// Writes, creations, removals and renames are edits. Reads are not: a rebuild reads every
/// template, so reacting to reads would rebuild forever.
fn is_edit(kind: &notify::EventKind) -> bool {
    use notify::EventKind;
    use notify::event::{AccessKind, AccessMode, ModifyKind};
    matches!(
        kind,
        EventKind::Create(_)
            | EventKind::Remove(_)
            | EventKind::Modify(ModifyKind::Data(_) | ModifyKind::Name(_) | ModifyKind::Any)
            | EventKind::Access(AccessKind::Close(AccessMode::Write))
    )
}

/// Templates and theme manifests need a rebuild; editor droppings do not.
fn needs_rebuild(path: &Path) -> bool {
    !is_temp_file(path)
        && matches!(
            path.extension().and_then(|x| x.to_str()),
            Some("html" | "toml" | "txt")
        )
}

/// Tera's error with its cause chain and report (which carries template name, line and column).
pub fn describe(e: &tera::Error) -> String {
    let mut out = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        out.push_str(": ");
        out.push_str(&s.to_string());
        src = s.source();
    }
    out
}

/// The chain of theme folders from `theme` up to its root, read from each `theme.toml`.
pub fn theme_chain(dir: Option<&Path>, theme: &str) -> std::result::Result<Vec<String>, String> {
    let mut chain = vec![theme.to_string()];
    let Some(dir) = dir else {
        return Ok(chain);
    };
    if theme != DEFAULT_THEME && !dir.join(theme).is_dir() {
        return Err(format!("theme `{theme}` not found in {}", dir.display()));
    }
    let mut current = theme.to_string();
    loop {
        let manifest_path = dir.join(&current).join("theme.toml");
        let manifest: ThemeManifest = match std::fs::read_to_string(&manifest_path) {
            Ok(text) => {
                toml::from_str(&text).map_err(|e| format!("{}: {e}", manifest_path.display()))?
            }
            Err(_) => ThemeManifest::default(),
        };
        let parent = match manifest.extends {
            Some(p) => p,
            None if current != DEFAULT_THEME => DEFAULT_THEME.to_string(),
            None => break,
        };
        if !valid_theme_name(&parent) {
            return Err(format!(
                "{}: `{parent}` is not a theme name",
                manifest_path.display()
            ));
        }
        if parent != DEFAULT_THEME && !dir.join(&parent).is_dir() {
            return Err(format!(
                "{}: extends `{parent}`, which is not a folder in {}",
                manifest_path.display(),
                dir.display()
            ));
        }
        if chain.contains(&parent) {
            return Err(format!(
                "{}: themes extend each other in a circle",
                manifest_path.display()
            ));
        }
        chain.push(parent.clone());
        if chain.len() > MAX_CHAIN {
            return Err(format!(
                "theme `{theme}` extends more than {MAX_CHAIN} levels deep"
            ));
        }
        current = parent;
    }
    Ok(chain)
}

/// Why `real` (a canonical path) is not inside `<dir>/<theme>/<sub>`, the theme's own folder:
/// a symlink may point anywhere inside it, but not out of it (not even into a parent theme: a
/// child extends its parent through `extends` in `theme.toml`).
fn inside_theme(
    dir: &Path,
    theme: &str,
    sub: &str,
    real: &Path,
) -> std::result::Result<(), String> {
    let own = dir.join(theme);
    let root = std::fs::canonicalize(own.join(sub))
        .map_err(|e| format!("{}: {e}", own.join(sub).display()))?;
    let theme_root = std::fs::canonicalize(&own).map_err(|e| format!("{}: {e}", own.display()))?;
    if root.starts_with(&theme_root) && real.starts_with(&root) {
        Ok(())
    } else {
        Err(format!(
            "symlink leads out of the theme folder (to {}); only links within {theme}/{sub}/ are followed",
            real.display()
        ))
    }
}

/// The files of one theme's `templates/` or `static/` folder, symlinks resolved.
#[derive(Default)]
struct ThemeFolder {
    /// (path as found, canonical path) of each file inside the folder.
    files: Vec<(PathBuf, PathBuf)>,
    /// (path as found, why) of each entry that leads out of it.
    refused: Vec<(PathBuf, String)>,
    /// Entries that cannot be resolved (a dangling symlink), with the error.
    broken: Vec<(PathBuf, String)>,
}

/// Walks `<dir>/<theme>/<sub>`, skipping editor leftovers. A symlink (to a file or a folder)
/// is followed only while it stays inside the folder; a folder reached twice through links is
/// walked once, so link loops end.
fn walk_theme_folder(dir: &Path, theme: &str, sub: &str) -> ThemeFolder {
    let mut out = ThemeFolder::default();
    let root = dir.join(theme).join(sub);
    if !root.exists() {
        return out;
    }
    let mut seen: Vec<PathBuf> = vec![];
    let mut stack = vec![root];
    while let Some(d) = stack.pop() {
        let real_dir = match std::fs::canonicalize(&d) {
            Ok(r) => r,
            Err(e) => {
                out.broken.push((d, e.to_string()));
                continue;
            }
        };
        if let Err(reason) = inside_theme(dir, theme, sub, &real_dir) {
            out.refused.push((d, reason));
            continue;
        }
        if seen.contains(&real_dir) {
            continue;
        }
        seen.push(real_dir);
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        let mut entries: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
        entries.sort();
        for path in entries {
            if is_temp_file(&path) {
                continue;
            }
            let real = match std::fs::canonicalize(&path) {
                Ok(r) => r,
                Err(e) => {
                    out.broken.push((path, e.to_string()));
                    continue;
                }
            };
            if real.is_dir() {
                stack.push(path);
            } else if let Err(reason) = inside_theme(dir, theme, sub, &real) {
                out.refused.push((path, reason));
            } else {
                out.files.push((path, real));
            }
        }
    }
    out
}

/// Templates of one theme folder: (name relative to templates/, file path, source). A symlink
/// that leads out of the theme's `templates/` folder is skipped and logged.
fn theme_templates(
    dir: &Path,
    theme: &str,
) -> std::result::Result<Vec<(String, PathBuf, String)>, String> {
    let root = dir.join(theme).join("templates");
    let folder = walk_theme_folder(dir, theme, "templates");
    for (path, reason) in &folder.refused {
        tracing::warn!(theme = %theme, file = %path.display(), "template not loaded: {reason}");
    }
    let is_template =
        |p: &Path| matches!(p.extension().and_then(|e| e.to_str()), Some("html" | "txt"));
    if let Some((path, e)) = folder.broken.iter().find(|(p, _)| is_template(p)) {
        return Err(format!("{}: {e}", path.display()));
    }
    let mut out = vec![];
    for (path, real) in folder.files {
        if !is_template(&path) {
            continue;
        }
        let name = path
            .strip_prefix(&root)
            .map_err(|e| e.to_string())?
            .to_string_lossy()
            .replace('\\', "/");
        let src = std::fs::read_to_string(&real).map_err(|e| format!("{}: {e}", path.display()))?;
        out.push((name, path, src));
    }
    Ok(out)
}

fn build_engine(
    dir: Option<&Path>,
    theme: &str,
    builtins: &Builtins,
    i18n: &Arc<I18n>,
) -> std::result::Result<Engine, Vec<String>> {
    let chain = theme_chain(dir, theme).map_err(|e| vec![e])?;
    // name → (source, where it came from); later inserts override earlier ones.
    let mut by_name: BTreeMap<String, (String, String)> = BTreeMap::new();
    let mut aliases: Vec<(String, String, String)> = vec![];
    for file in CoreDefault::iter() {
        if let Some(name) = file.strip_prefix("templates/")
            && let Some(f) = CoreDefault::get(&file)
        {
            let src = String::from_utf8_lossy(&f.data).into_owned();
            let origin = format!("(built-in) themes/default/templates/{name}");
            aliases.push((format!("core/{name}"), src.clone(), origin.clone()));
            by_name.insert(name.to_string(), (src, origin));
        }
    }
    for (owner, name, src) in &builtins.templates {
        let origin = format!("(built-in) plugin {owner}: {name}");
        // A theme may override `<id>/<name>`; the plugin's own version stays `plugins/<id>/<name>`.
        aliases.push((format!("plugins/{name}"), src.to_string(), origin.clone()));
        by_name.insert(name.clone(), (src.to_string(), origin));
    }
    if let Some(dir) = dir {
        for (depth, t) in chain.iter().enumerate().rev() {
            for (name, path, src) in theme_templates(dir, t).map_err(|e| vec![e])? {
                let origin = path.display().to_string();
                // Parents are also reachable as `<parent>/<name>`, so a child can extend the
                // very template it overrides.
                if depth > 0 {
                    aliases.push((format!("{t}/{name}"), src.clone(), origin.clone()));
                }
                by_name.insert(name, (src, origin));
            }
        }
    }
    let mut origins: HashMap<String, String> = HashMap::new();
    let mut all: Vec<(String, String)> = vec![];
    for (name, (src, origin)) in by_name {
        origins.insert(name.clone(), origin);
        all.push((name, src));
    }
    for (name, src, origin) in aliases {
        if !origins.contains_key(&name) {
            origins.insert(name.clone(), origin);
            all.push((name, src));
        }
    }
    let mut tera = tera::Tera::new();
    tera.autoescape_on([".html", ".htm", ".xml"]);
    register_functions(&mut tera, i18n.clone());
    if let Err(e) = tera.add_raw_templates(all) {
        return Err(vec![with_origins(&describe(&e), &origins)]);
    }
    Ok(Engine {
        name: theme.to_string(),
        chain,
        tera,
    })
}

/// Tera names templates by their logical name; operators need the file. Append it.
fn with_origins(message: &str, origins: &HashMap<String, String>) -> String {
    let mut files: Vec<&String> = origins
        .iter()
        .filter(|(name, _)| {
            message.contains(&format!("{name}:"))
                || message.contains(&format!("'{name}'"))
                || message.contains(&format!("`{name}`"))
        })
        .map(|(_, origin)| origin)
        .collect();
    files.sort();
    files.dedup();
    if files.is_empty() {
        message.to_string()
    } else {
        format!(
            "{message}\n  file: {}",
            files
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn theme_folder_walk_follows_inside_links_refuses_outside_ones_and_ends_on_loops() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path();
        let t = dir.join("mine/templates");
        std::fs::create_dir_all(t.join("parts")).expect("mkdir");
        std::fs::create_dir_all(dir.join("default/templates")).expect("mkdir");
        std::fs::write(t.join("parts/box.html"), "box").expect("write");
        std::fs::write(dir.join("default/templates/x.html"), "parent").expect("write");
        symlink("parts/box.html", t.join("alias.html")).expect("symlink");
        symlink(".", t.join("loop")).expect("symlink");
        symlink("..", t.join("parts/up")).expect("symlink");
        symlink("../../default/templates/x.html", t.join("x.html")).expect("symlink");
        symlink("/etc", t.join("etc")).expect("symlink");

        let mut names: Vec<String> = theme_templates(dir, "mine")
            .expect("templates")
            .into_iter()
            .map(|(name, _, src)| format!("{name}={src}"))
            .collect();
        names.sort();
        assert_eq!(names, ["alias.html=box", "parts/box.html=box"]);

        let mut refused: Vec<String> = walk_theme_folder(dir, "mine", "templates")
            .refused
            .into_iter()
            .map(|(p, _)| p.strip_prefix(dir).expect("inside").display().to_string())
            .collect();
        refused.sort();
        assert_eq!(refused, ["mine/templates/etc", "mine/templates/x.html"]);
    }
}
