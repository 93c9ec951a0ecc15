//! Languages through Fluent. Core and every plugin bring `.ftl` messages per language; a missing
//! message falls back to English, then to its id (and is logged), never to an error page.

use std::collections::HashMap;

use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource, FluentValue};
use unic_langid::LanguageIdentifier;

use crate::error::{Error, Result};

/// Languages the portal offers, the first being the fallback.
pub const LANGUAGES: &[(&str, &str)] = &[("en", "English"), ("cs", "Čeština")];
pub const FALLBACK: &str = "en";

pub const CORE_EN: &str = include_str!("../i18n/en.ftl");
pub const CORE_CS: &str = include_str!("../i18n/cs.ftl");

pub struct I18n {
    bundles: HashMap<&'static str, FluentBundle<FluentResource>>,
    /// Messages without arguments, formatted once: most of a page's text, on every request.
    plain: HashMap<&'static str, HashMap<String, String>>,
}

pub fn is_supported(lang: &str) -> bool {
    LANGUAGES.iter().any(|(code, _)| *code == lang)
}

/// Picks the first supported language from an Accept-Language header, honouring q-values.
pub fn negotiate(accept_language: &str) -> Option<&'static str> {
    let mut ranked: Vec<(f32, usize, &str)> = accept_language
        .split(',')
        .enumerate()
        .filter_map(|(i, part)| {
            let mut bits = part.trim().split(';');
            let tag = bits.next()?.trim();
            let q = bits
                .find_map(|p| {
                    p.trim()
                        .strip_prefix("q=")
                        .and_then(|q| q.parse::<f32>().ok())
                })
                .unwrap_or(1.0);
            (!tag.is_empty() && q > 0.0).then_some((q, i, tag))
        })
        .collect();
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    ranked.into_iter().find_map(|(_, _, tag)| {
        let primary = tag.split('-').next()?.to_ascii_lowercase();
        LANGUAGES
            .iter()
            .find(|(code, _)| *code == primary)
            .map(|(code, _)| *code)
    })
}

impl I18n {
    /// Builds one bundle per language from `(lang, ftl source)` pieces. A syntax error or a
    /// message defined twice is an error naming the language.
    pub fn new<'a>(sources: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Self> {
        let mut bundles = HashMap::new();
        let mut ids: Vec<(&'static str, String)> = vec![];
        for (code, _) in LANGUAGES {
            let langid: LanguageIdentifier = code
                .parse()
                .map_err(|_| Error::Internal(format!("bad language id {code}")))?;
            let mut bundle = FluentBundle::new_concurrent(vec![langid]);
            // Isolation marks would show up as stray characters in HTML attributes and tests.
            bundle.set_use_isolating(false);
            bundles.insert(*code, bundle);
        }
        for (lang, src) in sources {
            if let Some((code, _)) = LANGUAGES.iter().find(|(c, _)| *c == lang) {
                ids.extend(message_ids(src).into_iter().map(|id| (*code, id)));
            }
            let bundle = bundles.get_mut(lang).ok_or_else(|| {
                Error::Internal(format!("translations for unsupported language {lang}"))
            })?;
            let res = FluentResource::try_new(src.to_string()).map_err(|(_, errs)| {
                Error::Internal(format!("{lang}.ftl does not parse: {errs:?}"))
            })?;
            bundle
                .add_resource(res)
                .map_err(|errs| Error::Internal(format!("{lang}.ftl: {errs:?}")))?;
        }
        let mut i18n = I18n {
            bundles,
            plain: HashMap::new(),
        };
        for (lang, id) in ids {
            if let Some(text) = i18n.format_plain(lang, &id) {
                i18n.plain.entry(lang).or_default().insert(id, text);
            }
        }
        Ok(i18n)
    }

    /// A message that formats without arguments and without errors.
    fn format_plain(&self, lang: &str, id: &str) -> Option<String> {
        let bundle = self.bundles.get(lang)?;
        let pattern = bundle.get_message(id)?.value()?;
        let mut errors = Vec::new();
        let out = bundle.format_pattern(pattern, None, &mut errors);
        errors.is_empty().then(|| out.into_owned())
    }

    /// Every message of `lang` that formats without arguments, formatted.
    pub fn plain_messages(&self, lang: &str) -> impl Iterator<Item = (&str, &str)> {
        self.plain
            .get(lang)
            .into_iter()
            .flatten()
            .map(|(id, text)| (id.as_str(), text.as_str()))
    }

    pub fn has(&self, lang: &str, id: &str) -> bool {
        self.bundles.get(lang).is_some_and(|b| b.has_message(id))
    }

    /// The message `id` in `lang` with named arguments.
    pub fn text(&self, lang: &str, id: &str, args: &[(&str, String)]) -> String {
        for l in [lang, FALLBACK] {
            let Some(bundle) = self.bundles.get(l) else {
                continue;
            };
            let Some(pattern) = bundle.get_message(id).and_then(|m| m.value()) else {
                continue;
            };
            let mut fargs = FluentArgs::new();
            for (k, v) in args {
                fargs.set(*k, FluentValue::from(v.clone()));
            }
            let mut errors = Vec::new();
            let out = bundle.format_pattern(pattern, Some(&fargs), &mut errors);
            if !errors.is_empty() {
                tracing::warn!(lang = l, id, "fluent: {errors:?}");
            }
            return out.into_owned();
        }
        tracing::warn!(lang, id, "missing translation");
        id.to_string()
    }

    pub fn t(&self, lang: &str, id: &str) -> String {
        match self.plain.get(lang).and_then(|m| m.get(id)) {
            Some(text) => text.clone(),
            None => self.text(lang, id, &[]),
        }
    }
}

/// Message ids defined in an `.ftl` source, for completeness checks.
pub fn message_ids(ftl: &str) -> Vec<String> {
    ftl.lines()
        .filter(|l| l.chars().next().is_some_and(|c| c.is_ascii_alphabetic()))
        .filter_map(|l| l.split_once('=').map(|(id, _)| id.trim().to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_respects_quality() {
        assert_eq!(negotiate("cs-CZ,cs;q=0.9,en;q=0.8"), Some("cs"));
        assert_eq!(negotiate("de-DE, en;q=0.5, cs;q=0.7"), Some("cs"));
        assert_eq!(negotiate("de, fr"), None);
        assert_eq!(negotiate(""), None);
    }

    #[test]
    fn english_and_czech_define_the_same_messages() {
        let mut en = message_ids(CORE_EN);
        let mut cs = message_ids(CORE_CS);
        en.sort();
        cs.sort();
        let missing_cs: Vec<_> = en.iter().filter(|id| !cs.contains(id)).collect();
        let missing_en: Vec<_> = cs.iter().filter(|id| !en.contains(id)).collect();
        assert!(missing_cs.is_empty(), "missing in cs.ftl: {missing_cs:?}");
        assert!(missing_en.is_empty(), "missing in en.ftl: {missing_en:?}");
        assert!(en.len() > 20);
    }

    #[test]
    fn messages_format_with_arguments() {
        let i = I18n::new([("en", CORE_EN), ("cs", CORE_CS)]).expect("bundles");
        assert_eq!(i.t("cs", "nav-information"), "Informace");
        assert!(
            i.text("en", "footer-copyright", &[("year", "2026".into())])
                .contains("2026")
        );
        assert_eq!(i.t("cs", "no-such-message"), "no-such-message");
    }
}
