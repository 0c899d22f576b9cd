//! Server-rendered HTML: escaping, the page layout and form pieces. No JavaScript.

use resident_auth::Locale;

pub use resident_auth::letters::escape_html as escape;

/// Picks the Russian or the English text.
pub fn t(locale: Locale, ru: &'static str, en: &'static str) -> &'static str {
    match locale {
        Locale::Ru => ru,
        _ => en,
    }
}

const STYLE: &str = r#"
*{box-sizing:border-box}
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;color:#1f2933;background:#f3f5f8}
header{background:#1d4ed8;color:#fff;padding:.75rem 1rem;display:flex;justify-content:space-between;align-items:center;gap:1rem;flex-wrap:wrap}
header a{color:#fff}
header .brand{font-weight:700;text-decoration:none}
main{max-width:32rem;margin:2rem auto;padding:0 1rem}
.card{background:#fff;border-radius:12px;box-shadow:0 1px 4px rgba(0,0,0,.08);padding:1.5rem}
h1{font-size:1.4rem;margin:0 0 1rem}
label{display:block;font-weight:600;margin:1rem 0 .25rem}
.hint{font-size:.875rem;color:#52606d;margin:.25rem 0 0}
input[type=text],input[type=email],input[type=password]{width:100%;padding:.65rem .75rem;font-size:1rem;border:1px solid #9aa5b1;border-radius:8px}
input[aria-invalid=true]{border-color:#b91c1c}
button,.button{display:inline-block;margin-top:1.25rem;padding:.7rem 1.2rem;font-size:1rem;border:0;border-radius:8px;background:#1d4ed8;color:#fff;cursor:pointer;text-decoration:none}
button.secondary{background:#e4e7eb;color:#1f2933}
button.confirm{background:#2e7d32}
:focus-visible{outline:3px solid #f59e0b;outline-offset:2px}
.error{color:#b91c1c;font-size:.9rem;margin:.25rem 0 0}
.alert{background:#fef2f2;border:1px solid #fecaca;color:#7f1d1d;border-radius:8px;padding:.75rem;margin-bottom:1rem}
.notice{background:#ecfdf5;border:1px solid #a7f3d0;color:#065f46;border-radius:8px;padding:.75rem;margin-bottom:1rem}
.links{display:flex;justify-content:space-between;gap:1rem;margin-top:1.25rem;flex-wrap:wrap}
details.addresses summary{cursor:pointer;font-weight:700;list-style:none}
details.addresses summary::after{content:" ▾"}
details.addresses ul{list-style:none;padding:0;margin:.5rem 0 0;background:#fff;color:#1f2933;border-radius:8px;min-width:16rem}
details.addresses li form{margin:0}
details.addresses li button{margin:0;width:100%;text-align:left;background:none;color:#1f2933;border-radius:0;padding:.6rem .8rem}
details.addresses li button[aria-current=true]{font-weight:700;background:#eff6ff}
details.addresses li a{display:block;padding:.6rem .8rem;color:#1d4ed8}
dl{margin:0}dt{font-weight:600;margin-top:.75rem}dd{margin:0}
.visually-hidden{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0)}
@media (max-width:480px){main{margin:1rem auto}.card{padding:1rem}}
"#;

/// A whole page: `title`, optional header extras (the address menu), and the body.
pub fn page(
    locale: Locale,
    title: &str,
    header_extra: &str,
    body: &str,
    back_path: &str,
) -> String {
    let (other, other_label) = match locale {
        Locale::Ru => ("en", "English"),
        _ => ("ru", "Русский"),
    };
    format!(
        "<!DOCTYPE html><html lang=\"{lang}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} — {brand}</title><style>{STYLE}</style></head><body>\
         <header><a class=\"brand\" href=\"/\">{brand}</a>{header_extra}\
         <a href=\"/lang/{other}?back={back}\" lang=\"{other}\">{other_label}</a></header>\
         <main><div class=\"card\">{body}</div></main></body></html>",
        lang = locale.code(),
        title = escape(title),
        brand = t(locale, "Личный кабинет жителя", "Residents' portal"),
        back = escape(back_path),
    )
}

/// A text input with its label, hint and error, wired for screen readers.
pub struct Input<'a> {
    pub name: &'a str,
    pub label: &'a str,
    pub kind: &'a str,
    pub value: &'a str,
    pub hint: Option<&'a str>,
    pub error: Option<String>,
    pub autocomplete: &'a str,
    pub autofocus: bool,
}

impl Input<'_> {
    pub fn render(&self) -> String {
        let mut described = Vec::new();
        // When the error says what the hint says (initials), say it once, as the error.
        let hint = self
            .hint
            .filter(|hint| self.error.as_deref() != Some(*hint));
        let hint = hint.map_or_else(String::new, |hint| {
            described.push(format!("{}-hint", self.name));
            format!(
                "<p class=\"hint\" id=\"{}-hint\">{}</p>",
                self.name,
                escape(hint)
            )
        });
        let error = self.error.as_ref().map_or_else(String::new, |error| {
            described.push(format!("{}-error", self.name));
            format!(
                "<p class=\"error\" id=\"{}-error\" role=\"alert\">{}</p>",
                self.name,
                escape(error)
            )
        });
        let described = if described.is_empty() {
            String::new()
        } else {
            format!(" aria-describedby=\"{}\"", described.join(" "))
        };
        format!(
            "<label for=\"{name}\">{label}</label>\
             <input id=\"{name}\" name=\"{name}\" type=\"{kind}\" value=\"{value}\" autocomplete=\"{autocomplete}\"{invalid}{described}{autofocus} required>\
             {hint}{error}",
            name = self.name,
            label = escape(self.label),
            kind = self.kind,
            value = escape(self.value),
            autocomplete = self.autocomplete,
            invalid = if self.error.is_some() { " aria-invalid=\"true\"" } else { "" },
            autofocus = if self.autofocus { " autofocus" } else { "" },
        )
    }
}

/// The hidden CSRF field every form carries.
pub fn csrf_field(csrf: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        escape(csrf)
    )
}

/// A hidden field.
pub fn hidden(name: &str, value: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"{name}\" value=\"{}\">",
        escape(value)
    )
}

/// An alert box listing general (fieldless) errors.
pub fn alert(messages: &[String]) -> String {
    if messages.is_empty() {
        return String::new();
    }
    let items: String = messages
        .iter()
        .map(|m| format!("<p>{}</p>", escape(m)))
        .collect();
    format!("<div class=\"alert\" role=\"alert\">{items}</div>")
}
