//! Chat templates: the model's own Jinja `chat_template` (from tokenizer_config.json or GGUF
//! metadata) rendered with minijinja, configured like transformers renders it (trim_blocks,
//! lstrip_blocks, loop controls, Python string methods, `raise_exception`, `strftime_now`).

use minijinja::{Environment, Error, ErrorKind};
use serde::Serialize;

/// One chat message.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Message {
    pub role: String,
    pub content: String,
}

/// A compiled chat template.
pub struct ChatTemplate {
    env: Environment<'static>,
    bos_token: String,
    eos_token: String,
}

impl ChatTemplate {
    pub fn new(source: &str, bos_token: Option<&str>, eos_token: Option<&str>) -> Result<Self, String> {
        let mut env = Environment::new();
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        minijinja_contrib::add_to_environment(&mut env);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", |message: String| -> Result<String, Error> {
            Err(Error::new(ErrorKind::InvalidOperation, message))
        });
        env.add_function("strftime_now", |format: String| strftime_now(&format));
        env.add_template_owned("chat", source.to_owned())
            .map_err(|error| format!("the model's chat_template does not compile: {error}"))?;
        Ok(ChatTemplate {
            env,
            bos_token: bos_token.unwrap_or_default().to_owned(),
            eos_token: eos_token.unwrap_or_default().to_owned(),
        })
    }

    /// The prompt for `messages`, ending where the assistant's answer starts.
    pub fn render(&self, messages: &[Message], enable_thinking: bool) -> Result<String, String> {
        let template = self.env.get_template("chat").map_err(|error| error.to_string())?;
        template
            .render(minijinja::context! {
                messages => messages,
                add_generation_prompt => true,
                bos_token => self.bos_token,
                eos_token => self.eos_token,
                enable_thinking => enable_thinking,
            })
            .map_err(|error| format!("the model's chat_template failed: {error:#}"))
    }
}

/// Today's date in the few `strftime` forms chat templates use (`%d %b %Y`, `%Y-%m-%d`, ...).
fn strftime_now(format: &str) -> String {
    let days = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs() / 86_400) as i64;
    let (year, month, day) = civil_from_days(days);
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    let name = MONTHS[(month - 1) as usize];
    let mut out = String::new();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('d') => out.push_str(&format!("{day:02}")),
            Some('m') => out.push_str(&format!("{month:02}")),
            Some('Y') => out.push_str(&year.to_string()),
            Some('y') => out.push_str(&format!("{:02}", year % 100)),
            Some('b') => out.push_str(&name[..3]),
            Some('B') => out.push_str(name),
            Some('%') => out.push('%'),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    out
}

/// Proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// Removes `<think>...</think>` reasoning (and an unterminated `<think>` tail) from an answer.
pub fn strip_thinking(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    // Templates that open the block themselves leave only its end in the answer.
    if let Some(end) = rest.find("</think>").filter(|end| !rest[..*end].contains("<think>")) {
        rest = &rest[end + "</think>".len()..];
    }
    while let Some(start) = rest.find("<think>") {
        out.push_str(&rest[..start]);
        match rest[start..].find("</think>") {
            Some(end) => rest = &rest[start + end + "</think>".len()..],
            None => {
                rest = "";
                break;
            }
        }
    }
    out.push_str(rest);
    // Templates put the reasoning block first; the answer follows its closing newlines.
    out.trim_start().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_map_to_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_414), (2025, 11, 22));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
    }

    #[test]
    fn thinking_is_stripped() {
        assert_eq!(strip_thinking("<think>\nhmm\n</think>\n\nFinal Answer: (B)"), "Final Answer: (B)");
        assert_eq!(strip_thinking("<think>never closed"), "");
        assert_eq!(strip_thinking("plain"), "plain");
        assert_eq!(strip_thinking("a<think>x</think>b<think>y</think>c"), "abc");
        assert_eq!(strip_thinking("reasoning opened by the template</think>\n\nB"), "B");
    }

    #[test]
    fn qwen3_style_template_renders_with_python_methods_and_thinking_switch() {
        let source = r#"{%- for message in messages %}
{{- '<|im_start|>' + message.role + '\n' + message.content.strip() + '<|im_end|>\n' }}
{%- endfor %}
{%- if add_generation_prompt %}
{{- '<|im_start|>assistant\n' }}
{%- if enable_thinking is defined and enable_thinking is false %}
{{- '<think>\n\n</think>\n\n' }}
{%- endif %}
{%- endif %}"#;
        let template = ChatTemplate::new(source, None, Some("<|im_end|>")).unwrap();
        let messages = [
            Message { role: "system".into(), content: "Be brief.".into() },
            Message { role: "user".into(), content: " Hi \n".into() },
        ];
        assert_eq!(
            template.render(&messages, false).unwrap(),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
        );
        assert!(template.render(&messages, true).unwrap().ends_with("<|im_start|>assistant\n"));
    }

    #[test]
    fn raise_exception_becomes_an_error() {
        let template =
            ChatTemplate::new("{{ raise_exception('roles must alternate') }}", None, None).unwrap();
        let error = template.render(&[], false).unwrap_err();
        assert!(error.contains("roles must alternate"), "{error}");
    }
}
