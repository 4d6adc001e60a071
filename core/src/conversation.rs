//! Conversation rules: how statuses move when a customer writes or an operator acts, how far a
//! conversation may be snoozed, and how quick-reply templates are filled.
//!
//! Statuses: `new` (nobody has answered this request yet), `open` (being worked on), `pending`
//! (answered, waiting for the customer), `snoozed` (put aside until a time), `resolved` (done).
//! A customer message after `resolved` starts a new *request*, which analytics counts separately;
//! an operator reopening a resolved conversation does not.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};

use crate::model::ConversationStatus;

/// What a customer's message does to a conversation: New→New, Open→Open, Pending→Open (they
/// answered), Snoozed→Open (wakes it), Resolved→New and opens a new request. The flag is true
/// exactly when a new request starts.
pub fn after_customer_message(status: ConversationStatus) -> (ConversationStatus, bool) {
    use ConversationStatus::*;
    match status {
        // Nobody has answered yet: it stays new, so it stays in the "unanswered" views.
        New => (New, false),
        Open | Pending | Snoozed => (Open, false),
        Resolved => (New, true),
    }
}

/// Which status changes an operator may make:
///
/// - to `resolved`: from anything;
/// - to `open`: from anything (taking a new one, waking a snoozed one, reopening a resolved one,
///   which does not start a new request);
/// - to `pending` or `snoozed`: from `new`, `open`, `pending` or `snoozed`, not from `resolved`
///   (reopen it first: a closed request has nothing to wait for);
/// - to `new`: never, since `new` means "no operator has touched this request";
/// - to the same status: allowed, as a no-op (snoozed → snoozed moves the wake-up time).
///
/// Snoozing also needs a wake-up time accepted by [`snooze_until_valid`].
pub fn operator_may_set(from: ConversationStatus, to: ConversationStatus) -> bool {
    use ConversationStatus::*;
    if from == to {
        return true;
    }
    match to {
        Resolved | Open => true,
        Pending | Snoozed => from != Resolved,
        New => false,
    }
}

/// How far ahead a conversation may be snoozed.
pub const MAX_SNOOZE: TimeDelta = TimeDelta::days(90);

/// Whether `until` is an acceptable wake-up time at `now`: in the future, at most
/// [`MAX_SNOOZE`] ahead (a forgotten snooze must still surface eventually).
pub fn snooze_until_valid(now: DateTime<Utc>, until: DateTime<Utc>) -> bool {
    until > now && until - now <= MAX_SNOOZE
}

/// The variables the console offers in quick replies. [`render_template`] accepts whatever the
/// caller puts in `vars`; [`check_template`] checks a saved template against this list.
pub const TEMPLATE_VARIABLES: &[&str] = &[
    "contact.name",
    "contact.phone",
    "contact.email",
    "operator.name",
    "client.name",
    "conversation.request_no",
];

/// Why a template cannot be filled.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum TemplateError {
    /// A `{{name}}` whose name is not among the variables (an empty name included).
    #[error("unknown variable `{{{{{0}}}}}`")]
    UnknownVariable(String),
    /// A `{{` with no `}}` after it; `near` is the text from the `{{` on (at most 24 characters).
    #[error("`{{{{` is not closed: `{near}`")]
    Unclosed { near: String },
}

/// One piece of a parsed template.
enum Piece<'a> {
    Text(&'a str),
    Variable(&'a str),
}

/// Splits a template into literal text and trimmed variable names.
fn parse(text: &str) -> Result<Vec<Piece<'_>>, TemplateError> {
    let mut pieces = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        pieces.push(Piece::Text(&rest[..open]));
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else {
            return Err(TemplateError::Unclosed {
                near: rest[open..].chars().take(24).collect(),
            });
        };
        pieces.push(Piece::Variable(after[..close].trim()));
        rest = &after[close + 2..];
    }
    pieces.push(Piece::Text(rest));
    Ok(pieces)
}

/// Fills `{{contact.name}}`, `{{operator.name}}`, `{{client.name}}`,
/// `{{conversation.request_no}}` … from `vars`. Whitespace inside the braces is allowed
/// (`{{ contact.name }}`). An unknown variable or an unclosed `{{` is an error naming it, so an
/// operator never sends a half-filled text.
///
/// There is no escaping: a literal `{{` cannot be written in a template. A lone `}}` is plain
/// text. Values are inserted as they are and never scanned again, so a customer who names
/// themselves `{{operator.name}}` gets exactly that text back, not a substitution.
pub fn render_template(
    text: &str,
    vars: &BTreeMap<String, String>,
) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(text.len());
    for piece in parse(text)? {
        match piece {
            Piece::Text(t) => out.push_str(t),
            Piece::Variable(name) => match vars.get(name) {
                Some(value) => out.push_str(value),
                None => return Err(TemplateError::UnknownVariable(name.to_owned())),
            },
        }
    }
    Ok(out)
}

/// Checks a template before it is saved: every `{{…}}` is closed and names one of
/// [`TEMPLATE_VARIABLES`].
pub fn check_template(text: &str) -> Result<(), TemplateError> {
    for piece in parse(text)? {
        if let Piece::Variable(name) = piece
            && !TEMPLATE_VARIABLES.contains(&name)
        {
            return Err(TemplateError::UnknownVariable(name.to_owned()));
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use ConversationStatus::*;

    #[test]
    fn customer_messages_move_statuses() {
        let cases = [
            (New, New, false),
            (Open, Open, false),
            (Pending, Open, false),
            (Snoozed, Open, false),
            (Resolved, New, true),
        ];
        for (from, to, new_request) in cases {
            assert_eq!(after_customer_message(from), (to, new_request), "{from:?}");
        }
    }

    #[test]
    fn operator_transitions_table() {
        // Rows: from; columns: to in the order New, Open, Pending, Snoozed, Resolved.
        let table = [
            (New, [true, true, true, true, true]),
            (Open, [false, true, true, true, true]),
            (Pending, [false, true, true, true, true]),
            (Snoozed, [false, true, true, true, true]),
            (Resolved, [false, true, false, false, true]),
        ];
        for (from, row) in table {
            for (to, allowed) in ConversationStatus::ALL.into_iter().zip(row) {
                assert_eq!(operator_may_set(from, to), allowed, "{from:?} -> {to:?}");
            }
        }
    }

    #[test]
    fn snooze_window() {
        let now = DateTime::parse_from_rfc3339("2025-03-01T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let cases = [
            ("in the past", now - TimeDelta::minutes(1), false),
            ("now", now, false),
            ("a second ahead", now + TimeDelta::seconds(1), true),
            ("tomorrow", now + TimeDelta::days(1), true),
            ("exactly 90 days", now + TimeDelta::days(90), true),
            (
                "90 days and a second",
                now + TimeDelta::days(90) + TimeDelta::seconds(1),
                false,
            ),
            ("a year", now + TimeDelta::days(365), false),
        ];
        for (name, until, ok) in cases {
            assert_eq!(snooze_until_valid(now, until), ok, "{name}");
        }
    }

    fn vars() -> BTreeMap<String, String> {
        [
            ("contact.name", "Иван"),
            ("operator.name", "Anna"),
            ("client.name", "ООО Ромашка"),
            ("conversation.request_no", "3"),
            ("contact.email", ""),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    #[test]
    fn templates_fill_variables() {
        let cases = [
            ("", ""),
            ("no variables", "no variables"),
            ("Здравствуйте, {{contact.name}}!", "Здравствуйте, Иван!"),
            ("{{ contact.name }}", "Иван"),
            ("{{\tcontact.name\n}}", "Иван"),
            (
                "{{operator.name}} from {{client.name}}, request #{{conversation.request_no}}",
                "Anna from ООО Ромашка, request #3",
            ),
            ("{{contact.name}}{{contact.name}}", "ИванИван"),
            ("empty: [{{contact.email}}]", "empty: []"),
            ("a lone }} stays", "a lone }} stays"),
            ("{ single } braces", "{ single } braces"),
            ("{{contact.name}}}", "Иван}"),
        ];
        for (text, expected) in cases {
            assert_eq!(render_template(text, &vars()).unwrap(), expected, "{text}");
        }
    }

    #[test]
    fn template_errors_name_the_problem() {
        use TemplateError::*;
        let cases = [
            (
                "Hi {{contact.nmae}}",
                UnknownVariable("contact.nmae".into()),
            ),
            ("{{}}", UnknownVariable(String::new())),
            ("{{   }}", UnknownVariable(String::new())),
            ("{{Contact.Name}}", UnknownVariable("Contact.Name".into())),
            (
                "Hi {{contact.name",
                Unclosed {
                    near: "{{contact.name".into(),
                },
            ),
            (
                "ok {{contact.name}} then {{",
                Unclosed { near: "{{".into() },
            ),
            (
                "{{ a very long unclosed variable name here",
                Unclosed {
                    near: "{{ a very long unclosed ".into(),
                },
            ),
            // No escaping: `{{{{` opens a variable named `{{x`.
            ("{{{{x}}", UnknownVariable("{{x".into())),
            ("{{ a {{ b }}", UnknownVariable("a {{ b".into())),
        ];
        for (text, expected) in cases {
            assert_eq!(render_template(text, &vars()), Err(expected), "{text}");
        }
        assert_eq!(
            UnknownVariable("x.y".into()).to_string(),
            "unknown variable `{{x.y}}`"
        );
        assert_eq!(
            Unclosed {
                near: "{{ab".into()
            }
            .to_string(),
            "`{{` is not closed: `{{ab`"
        );
    }

    #[test]
    fn values_are_not_expanded_again() {
        let mut v = vars();
        v.insert("contact.name".into(), "{{operator.name}} {{".into());
        assert_eq!(
            render_template("Hi {{contact.name}}", &v).unwrap(),
            "Hi {{operator.name}} {{"
        );
    }

    #[test]
    fn check_template_uses_the_known_variables() {
        for name in TEMPLATE_VARIABLES {
            assert_eq!(check_template(&format!("x {{{{ {name} }}}} y")), Ok(()));
        }
        assert_eq!(check_template("plain"), Ok(()));
        assert_eq!(
            check_template("{{contact.secret}}"),
            Err(TemplateError::UnknownVariable("contact.secret".into()))
        );
        assert!(matches!(
            check_template("{{contact.name"),
            Err(TemplateError::Unclosed { .. })
        ));
    }
}
