//! The one table that maps every failure to a stable `code`, an HTTP status and a message.
//! Clients switch on `code`; messages are for people, in their language, and may change.

use std::fmt;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use omnihub_actors::HubError;
use omnihub_core::access::Denial;
use omnihub_core::validate::Invalid;
use omnihub_store::StoreError;
use serde::Serialize;

use crate::i18n::{Lang, Msg};

tokio::task_local! {
    /// The id of the request being served, so error bodies can quote it.
    pub static REQUEST_ID: String;
    /// The language negotiated from the request's `Accept-Language`, so error bodies speak it.
    pub static LANG: Lang;
}

/// The language of the request being served; the API default outside a request.
pub fn request_lang() -> Lang {
    LANG.try_with(|l| *l).unwrap_or(Lang::API_DEFAULT)
}

/// The JSON body of every error response.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// Stable machine-readable code, e.g. `not_found`, `validation_failed`.
    pub code: &'static str,
    /// For people, in the language negotiated from `Accept-Language` (Russian or English).
    pub message: String,
    /// Quote it when reporting a problem; it is in the server log too.
    pub request_id: String,
    /// When a provider refused: what went wrong as a code (`invalid_token`, `webhook_not_set`,
    /// `blocked_by_user`, `rate_limited`, `unreachable`, `provider_error`), which `message`
    /// says in words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
    /// When a provider refused: its own words, untranslated, for support.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Every failure the API reports. Variants whose wording depends on the case carry a catalog
/// message (`Msg`), never finished text, so it can be rendered in the request's language.
#[derive(Debug)]
pub enum ApiError {
    Validation(Msg),
    /// serde's or actix's own words, quoted verbatim inside the localized sentence.
    InvalidJson(String),
    InvalidParameter(Msg),
    PayloadTooLarge(usize),
    UnsupportedMediaType,
    /// An upload of a kind of file, or in a form, that is not taken (415 with the reason).
    UnsupportedFile(Msg),
    Unauthenticated,
    InvalidCredentials,
    TotpRequired,
    InvalidTotp,
    AccountLocked(i64),
    RateLimited(u64),
    CsrfFailed,
    Forbidden,
    ClientBlocked,
    NotFound,
    Conflict(Msg),
    /// A provider refused a call made for the client (409 `conflict`), with the problem's code
    /// and the provider's words.
    ProviderRefused {
        problem: omnihub_connectors::provider::Problem,
        detail: String,
    },
    InvalidToken,
    /// A webhook whose credentials do not match its channel (or whose channel does not exist:
    /// the two are never told apart).
    InvalidSignature,
    /// A widget's public API called from a page whose origin the widget does not allow.
    OriginNotAllowed,
    /// A widget visitor's token that names no visitor of this widget.
    VisitorUnknown,
    /// The method is not served on this path; carries what is (for `Allow`).
    MethodNotAllowed(&'static str),
    EmailNotConfigured,
    /// A call-back asked for outside the telephony channel's working hours.
    OutOfHours,
    /// The captcha verifier refused the visitor's token (or none was given).
    CaptchaFailed,
    /// A public media link whose signature is wrong or missing, or which expired.
    InvalidLink,
    /// What is not ready and why, for operators.
    NotReady(String),
    /// A social network does not allow this (422 `unsupported_by_network`, with the reason).
    Unsupported(Msg),
    /// Logged with the request id; the client sees only the id.
    Internal(String),
}

impl ApiError {
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Validation(_) => "validation_failed",
            ApiError::InvalidJson(_) => "invalid_json",
            ApiError::InvalidParameter(_) => "invalid_parameter",
            ApiError::PayloadTooLarge(_) => "payload_too_large",
            ApiError::UnsupportedMediaType | ApiError::UnsupportedFile(_) => {
                "unsupported_media_type"
            }
            ApiError::Unauthenticated => "unauthenticated",
            ApiError::InvalidCredentials => "invalid_credentials",
            ApiError::TotpRequired => "totp_required",
            ApiError::InvalidTotp => "invalid_totp",
            ApiError::AccountLocked(_) => "account_locked",
            ApiError::RateLimited(_) => "rate_limited",
            ApiError::CsrfFailed => "csrf_failed",
            ApiError::Forbidden => "forbidden",
            ApiError::ClientBlocked => "client_blocked",
            ApiError::NotFound => "not_found",
            ApiError::Conflict(_) | ApiError::ProviderRefused { .. } => "conflict",
            ApiError::InvalidToken => "invalid_token",
            ApiError::InvalidSignature => "invalid_signature",
            ApiError::OriginNotAllowed => "origin_not_allowed",
            ApiError::VisitorUnknown => "visitor_unknown",
            ApiError::MethodNotAllowed(_) => "method_not_allowed",
            ApiError::EmailNotConfigured => "email_not_configured",
            ApiError::OutOfHours => "out_of_hours",
            ApiError::CaptchaFailed => "captcha_failed",
            ApiError::InvalidLink => "invalid_link",
            ApiError::NotReady(_) => "not_ready",
            ApiError::Unsupported(_) => "unsupported_by_network",
            ApiError::Internal(_) => "internal",
        }
    }

    pub fn internal(e: impl std::fmt::Display) -> Self {
        ApiError::Internal(e.to_string())
    }

    /// What the client is told; an internal error's detail stays in the log and only
    /// `request_id` is quoted.
    pub fn message(&self, request_id: &str) -> Msg {
        match self {
            ApiError::Validation(m)
            | ApiError::InvalidParameter(m)
            | ApiError::Conflict(m)
            | ApiError::Unsupported(m)
            | ApiError::UnsupportedFile(m) => m.clone(),
            ApiError::InvalidJson(detail) => Msg::InvalidJson {
                detail: detail.clone(),
            },
            ApiError::PayloadTooLarge(limit) => Msg::PayloadTooLarge { limit: *limit },
            ApiError::UnsupportedMediaType => Msg::UnsupportedMediaType,
            ApiError::Unauthenticated => Msg::Unauthenticated,
            ApiError::InvalidCredentials => Msg::InvalidCredentials,
            ApiError::TotpRequired => Msg::TotpRequired,
            ApiError::InvalidTotp => Msg::InvalidTotp,
            ApiError::AccountLocked(seconds) => Msg::AccountLocked { seconds: *seconds },
            ApiError::RateLimited(seconds) => Msg::RateLimited { seconds: *seconds },
            ApiError::CsrfFailed => Msg::CsrfFailed,
            ApiError::Forbidden => Msg::Forbidden,
            ApiError::ClientBlocked => Msg::ClientBlocked,
            ApiError::NotFound => Msg::NotFound,
            ApiError::InvalidToken => Msg::InvalidToken,
            ApiError::InvalidSignature => Msg::InvalidSignature,
            ApiError::OriginNotAllowed => Msg::OriginNotAllowed,
            ApiError::VisitorUnknown => Msg::VisitorUnknown,
            ApiError::MethodNotAllowed(allowed) => Msg::MethodNotAllowed { allowed },
            ApiError::EmailNotConfigured => Msg::EmailNotConfigured,
            ApiError::OutOfHours => Msg::CallbackOutOfHours,
            ApiError::CaptchaFailed => Msg::CaptchaFailed,
            ApiError::InvalidLink => Msg::InvalidLink,
            ApiError::ProviderRefused { problem, .. } => Msg::of_problem(*problem),
            ApiError::NotReady(detail) => Msg::NotReady {
                detail: detail.clone(),
            },
            ApiError::Internal(_) => Msg::Internal {
                request_id: request_id.to_string(),
            },
        }
    }
}

/// English, for logs; responses render `message` in the request's language.
impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiError::Internal(detail) => write!(f, "internal error: {detail}"),
            other => f.write_str(&other.message("").render(Lang::En)),
        }
    }
}

impl std::error::Error for ApiError {}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Validation(_) | ApiError::InvalidJson(_) | ApiError::InvalidParameter(_) => {
                StatusCode::BAD_REQUEST
            }
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType | ApiError::UnsupportedFile(_) => {
                StatusCode::UNSUPPORTED_MEDIA_TYPE
            }
            ApiError::Unauthenticated
            | ApiError::InvalidCredentials
            | ApiError::TotpRequired
            | ApiError::InvalidTotp
            | ApiError::InvalidSignature
            | ApiError::VisitorUnknown => StatusCode::UNAUTHORIZED,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::AccountLocked(_) => StatusCode::LOCKED,
            ApiError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::CsrfFailed
            | ApiError::Forbidden
            | ApiError::ClientBlocked
            | ApiError::CaptchaFailed
            | ApiError::InvalidLink
            | ApiError::OriginNotAllowed => StatusCode::FORBIDDEN,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::Unsupported(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Conflict(_) | ApiError::ProviderRefused { .. } | ApiError::OutOfHours => {
                StatusCode::CONFLICT
            }
            ApiError::InvalidToken => StatusCode::GONE,
            ApiError::EmailNotConfigured | ApiError::NotReady(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let request_id = REQUEST_ID.try_with(Clone::clone).unwrap_or_default();
        if let ApiError::Internal(detail) = self {
            tracing::error!(%request_id, error = %detail, "internal error");
        }
        let lang = request_lang();
        let message = self.message(&request_id).render(lang);
        let mut res = HttpResponse::build(self.status_code());
        res.insert_header((header::CONTENT_LANGUAGE, lang.code()));
        let retry_after = match self {
            ApiError::AccountLocked(secs) => Some(u64::try_from(*secs).unwrap_or(1)),
            ApiError::RateLimited(secs) => Some(*secs),
            _ => None,
        };
        if let Some(secs) = retry_after
            && let Ok(v) = HeaderValue::from_str(&secs.max(1).to_string())
        {
            res.insert_header((header::RETRY_AFTER, v));
        }
        if let ApiError::MethodNotAllowed(allowed) = self {
            res.insert_header((header::ALLOW, *allowed));
        }
        let (reason, detail) = match self {
            ApiError::ProviderRefused { problem, detail } => {
                (Some(problem.code()), Some(detail.clone()))
            }
            _ => (None, None),
        };
        res.json(ErrorBody {
            code: self.code(),
            message,
            request_id,
            reason,
            detail,
        })
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ApiError::NotFound,
            StoreError::Conflict(field) => ApiError::Conflict(Msg::ValueTaken { field }),
            other => ApiError::internal(other),
        }
    }
}

/// A schedule given by a caller (a recurring task's cron expression, time zone or catch-up
/// policy) that cannot be used.
impl From<omnihub_core::schedule::ScheduleError> for ApiError {
    fn from(e: omnihub_core::schedule::ScheduleError) -> Self {
        use omnihub_core::schedule::ScheduleError;
        ApiError::Validation(match e {
            ScheduleError::Cron { expression, reason } => Msg::InvalidCron { expression, reason },
            ScheduleError::TimeZone(zone) => Msg::UnknownTimezone { zone },
            ScheduleError::Never(expression) => Msg::CronNeverFires { expression },
            ScheduleError::CatchUp(value) => Msg::InvalidCatchUp { value },
        })
    }
}

impl From<Invalid> for ApiError {
    fn from(e: Invalid) -> Self {
        ApiError::Validation(e.into())
    }
}

impl From<Denial> for ApiError {
    fn from(d: Denial) -> Self {
        match d {
            Denial::Forbidden => ApiError::Forbidden,
            Denial::ClientBlocked => ApiError::ClientBlocked,
            Denial::NotFound => ApiError::NotFound,
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// A webhook the connector refused: a bad signature or secret is 401 (the same for every cause,
/// so a prober learns nothing), a payload it cannot read 400, a method it does not take 405.
impl From<omnihub_connectors::provider::WebhookError> for ApiError {
    fn from(err: omnihub_connectors::provider::WebhookError) -> Self {
        use omnihub_connectors::provider::WebhookError;
        match err {
            WebhookError::Unauthorized => ApiError::InvalidSignature,
            WebhookError::Malformed(reason) => ApiError::InvalidJson(reason),
            WebhookError::MethodNotAllowed => ApiError::MethodNotAllowed("POST"),
        }
    }
}

/// The hub's failures at the HTTP edge: store failures keep their meaning (a missing row is
/// 404, a taken value 409); a broken conversation rule is 400; a client subtree that is down
/// is 503 (nothing was acknowledged, so the caller may retry); anything else is internal.
impl From<HubError> for ApiError {
    fn from(e: HubError) -> Self {
        match e {
            HubError::Store(s) => s.into(),
            HubError::Invalid(detail) => ApiError::Validation(Msg::ConversationRule { detail }),
            HubError::Unavailable => ApiError::NotReady(e.to_string()),
            other => ApiError::internal(other),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use omnihub_core::schedule::Recurrence;

    use super::*;
    use crate::i18n::Lang;

    #[test]
    fn a_bad_schedule_is_a_validation_error_that_names_it() {
        for (expression, zone, says) in [
            ("0 25 * * *", "UTC", "0 25 * * *"),
            ("0 9 * * *", "Europe/Atlantis", "Europe/Atlantis"),
            ("0 0 30 2 *", "UTC", "never fires"),
        ] {
            let err: ApiError = Recurrence::parse(expression, zone).unwrap_err().into();
            let ApiError::Validation(msg) = err else {
                panic!("{expression} {zone}: {err:?}");
            };
            assert!(
                msg.render(Lang::En).contains(says),
                "{}",
                msg.render(Lang::En)
            );
            assert!(!msg.render(Lang::Ru).is_empty());
        }
    }
}
