//! Server-rendered HTML that escapes by default: text becomes markup only through
//! [`html!`](crate::pages::html), which escapes every argument that is not already [`Html`].
//! No JavaScript.

use std::fmt;

use resident_auth::Locale;

/// Markup: made only by [`html!`] (whose text arguments are escaped) and the helpers here,
/// so text from a request or the store can reach a page only escaped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Html(String);

impl Html {
    /// Markup the caller wrote itself (a template's literal text).
    pub(crate) fn trusted(markup: String) -> Self {
        Self(markup)
    }

    /// Nothing.
    pub(crate) fn empty() -> Self {
        Self(String::new())
    }

    pub(crate) fn into_string(self) -> String {
        self.0
    }
}

impl FromIterator<Html> for Html {
    fn from_iter<I: IntoIterator<Item = Html>>(iter: I) -> Self {
        Self(iter.into_iter().map(|h| h.0).collect())
    }
}

/// What a template argument is: text (escaped) or markup (kept).
pub(crate) trait Fragment {
    /// Writes the argument into the page.
    fn write(&self, out: &mut fmt::Formatter<'_>) -> fmt::Result;
}

impl Fragment for str {
    fn write(&self, out: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.chars() {
            match c {
                '&' => out.write_str("&amp;")?,
                '<' => out.write_str("&lt;")?,
                '>' => out.write_str("&gt;")?,
                '"' => out.write_str("&quot;")?,
                '\'' => out.write_str("&#39;")?,
                other => fmt::Write::write_char(out, other)?,
            }
        }
        Ok(())
    }
}

impl Fragment for String {
    fn write(&self, out: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.as_str().write(out)
    }
}

impl Fragment for Html {
    fn write(&self, out: &mut fmt::Formatter<'_>) -> fmt::Result {
        out.write_str(&self.0)
    }
}

impl<T: Fragment + ?Sized> Fragment for &T {
    fn write(&self, out: &mut fmt::Formatter<'_>) -> fmt::Result {
        (**self).write(out)
    }
}

/// A template argument on its way into `format!`.
pub(crate) struct Arg<'a, T: ?Sized>(pub(crate) &'a T);

impl<T: Fragment + ?Sized> fmt::Display for Arg<'_, T> {
    fn fmt(&self, out: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.write(out)
    }
}

/// `html!("<p>{text}</p>", text = value)`: the template's literal text is markup, every
/// named argument is escaped unless it is [`Html`]. Arguments are always named: a template
/// never captures a variable implicitly.
macro_rules! html {
    ($template:literal $(, $name:ident = $value:expr)* $(,)?) => {
        $crate::pages::html::Html::trusted(format!(
            $template $(, $name = $crate::pages::html::Arg(&$value))*
        ))
    };
}
pub(crate) use html;

/// Picks the Russian or the English text.
pub(crate) fn t(locale: Locale, ru: &'static str, en: &'static str) -> &'static str {
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
button.danger{background:#b91c1c}
h2{font-size:1.1rem;margin:1.5rem 0 .5rem}
label.inline{display:inline;font-weight:400;margin:0}
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

/// A whole page: `title`, header extras (the address menu), and the body.
pub(crate) fn page(
    locale: Locale,
    title: &str,
    header_extra: Html,
    body: Html,
    back_path: &str,
) -> Html {
    let (other, other_label) = match locale {
        Locale::Ru => ("en", "English"),
        _ => ("ru", "Русский"),
    };
    html!(
        "<!DOCTYPE html><html lang=\"{lang}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} — {brand}</title><style>{style}</style></head><body>\
         <header><a class=\"brand\" href=\"/\">{brand}</a>{header_extra}\
         <a href=\"/lang/{other}?back={back}\" lang=\"{other}\">{other_label}</a></header>\
         <main><div class=\"card\">{body}</div></main></body></html>",
        lang = locale.code(),
        title = title,
        brand = t(locale, "Личный кабинет жителя", "Residents' portal"),
        style = Html::trusted(STYLE.to_owned()),
        header_extra = header_extra,
        other = other,
        back = back_path,
        other_label = other_label,
        body = body,
    )
}

/// A text input with its label, hint and error, wired for screen readers.
pub(crate) struct Input<'a> {
    pub(crate) name: &'static str,
    pub(crate) label: &'a str,
    pub(crate) kind: &'static str,
    pub(crate) value: &'a str,
    pub(crate) hint: Option<&'a str>,
    pub(crate) error: Option<String>,
    pub(crate) autocomplete: &'static str,
    pub(crate) autofocus: bool,
}

impl Input<'_> {
    pub(crate) fn render(&self) -> Html {
        let mut described = Vec::new();
        // When the error says what the hint says (initials), say it once, as the error.
        let hint = self
            .hint
            .filter(|hint| self.error.as_deref() != Some(*hint));
        let hint = hint.map_or_else(Html::empty, |hint| {
            described.push(format!("{}-hint", self.name));
            html!(
                "<p class=\"hint\" id=\"{name}-hint\">{hint}</p>",
                name = self.name,
                hint = hint
            )
        });
        let error = self.error.as_ref().map_or_else(Html::empty, |error| {
            described.push(format!("{}-error", self.name));
            html!(
                "<p class=\"error\" id=\"{name}-error\" role=\"alert\">{error}</p>",
                name = self.name,
                error = error
            )
        });
        let described = if described.is_empty() {
            Html::empty()
        } else {
            html!(" aria-describedby=\"{ids}\"", ids = described.join(" "))
        };
        html!(
            "<label for=\"{name}\">{label}</label>\
             <input id=\"{name}\" name=\"{name}\" type=\"{kind}\" value=\"{value}\" autocomplete=\"{autocomplete}\"{invalid}{described}{autofocus} required>\
             {hint}{error}",
            name = self.name,
            label = self.label,
            kind = self.kind,
            value = self.value,
            autocomplete = self.autocomplete,
            invalid = Html::trusted(if self.error.is_some() { " aria-invalid=\"true\"" } else { "" }.to_owned()),
            described = described,
            autofocus = Html::trusted(if self.autofocus { " autofocus" } else { "" }.to_owned()),
            hint = hint,
            error = error,
        )
    }
}

/// The hidden CSRF field every form carries.
pub(crate) fn csrf_field(csrf: &str) -> Html {
    hidden("csrf", csrf)
}

/// A hidden field.
pub(crate) fn hidden(name: &'static str, value: &str) -> Html {
    html!(
        "<input type=\"hidden\" name=\"{name}\" value=\"{value}\">",
        name = name,
        value = value
    )
}

/// An alert box listing general (fieldless) errors.
pub(crate) fn alert(messages: &[String]) -> Html {
    if messages.is_empty() {
        return Html::empty();
    }
    let items: Html = messages
        .iter()
        .map(|m| html!("<p>{m}</p>", m = m))
        .collect();
    html!(
        "<div class=\"alert\" role=\"alert\">{items}</div>",
        items = items
    )
}

#[cfg(test)]
mod tests {
    use super::{hidden, Html, Input};

    #[test]
    fn arguments_are_escaped_unless_they_are_markup() {
        let text = "<script>alert('x')</script> & \"q\"";
        let page = html!(
            "<p>{text}</p>{markup}",
            text = text,
            markup = Html::trusted("<b>ok</b>".to_owned())
        );
        assert_eq!(
            page.into_string(),
            "<p>&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;</p><b>ok</b>"
        );
        assert_eq!(
            hidden("token", "\"><img src=x onerror=alert(1)>").into_string(),
            "<input type=\"hidden\" name=\"token\" value=\"&quot;&gt;&lt;img src=x onerror=alert(1)&gt;\">"
        );
    }

    #[test]
    fn an_input_escapes_its_value_hint_and_error() {
        let input = Input {
            name: "surname",
            label: "Фамилия",
            kind: "text",
            value: "<i>",
            hint: Some("a & b"),
            error: Some("\"bad\"".to_owned()),
            autocomplete: "family-name",
            autofocus: false,
        }
        .render()
        .into_string();
        assert!(input.contains("value=\"&lt;i&gt;\""), "{input}");
        assert!(input.contains("a &amp; b"), "{input}");
        assert!(input.contains("&quot;bad&quot;"), "{input}");
        assert!(!input.contains("<i>"), "{input}");
    }
}
