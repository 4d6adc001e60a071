//! The one table that maps every failure to a stable `code`, an HTTP status and a message.
//! Clients switch on `code`; messages are for people and may change.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use omnihub_core::access::Denial;
use omnihub_core::validate::Invalid;
use omnihub_store::StoreError;
use serde::Serialize;

tokio::task_local! {
    /// The id of the request being served, so error bodies can quote it.
    pub static REQUEST_ID: String;
}

/// The JSON body of every error response.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// Stable machine-readable code, e.g. `not_found`, `validation_failed`.
    pub code: &'static str,
    pub message: String,
    /// Quote it when reporting a problem; it is in the server log too.
    pub request_id: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Validation(String),
    #[error("malformed JSON: {0}")]
    InvalidJson(String),
    #[error("{0}")]
    InvalidParameter(String),
    #[error("the request body is larger than the limit of {0} bytes")]
    PayloadTooLarge(usize),
    #[error("the request body must be application/json")]
    UnsupportedMediaType,
    #[error("sign in first")]
    Unauthenticated,
    #[error("wrong e-mail or password")]
    InvalidCredentials,
    #[error("enter the code from your authenticator app")]
    TotpRequired,
    #[error("the second-factor code is wrong or expired")]
    InvalidTotp,
    #[error("too many failed sign-ins: the account is locked for {0} more seconds")]
    AccountLocked(i64),
    #[error("too many requests: try again in {0} seconds")]
    RateLimited(u64),
    #[error("missing or wrong CSRF token: send the X-CSRF-Token header you got at sign-in")]
    CsrfFailed,
    #[error("you do not have the right to do this")]
    Forbidden,
    #[error("this client is blocked by the platform")]
    ClientBlocked,
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    Conflict(String),
    #[error("the link is invalid, used or expired")]
    InvalidToken,
    #[error("outgoing e-mail is not configured on this server")]
    EmailNotConfigured,
    #[error("not ready: {0}")]
    NotReady(String),
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Validation(_) => "validation_failed",
            ApiError::InvalidJson(_) => "invalid_json",
            ApiError::InvalidParameter(_) => "invalid_parameter",
            ApiError::PayloadTooLarge(_) => "payload_too_large",
            ApiError::UnsupportedMediaType => "unsupported_media_type",
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
            ApiError::Conflict(_) => "conflict",
            ApiError::InvalidToken => "invalid_token",
            ApiError::EmailNotConfigured => "email_not_configured",
            ApiError::NotReady(_) => "not_ready",
            ApiError::Internal(_) => "internal",
        }
    }

    pub fn internal(e: impl std::fmt::Display) -> Self {
        ApiError::Internal(e.to_string())
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Validation(_) | ApiError::InvalidJson(_) | ApiError::InvalidParameter(_) => {
                StatusCode::BAD_REQUEST
            }
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unauthenticated
            | ApiError::InvalidCredentials
            | ApiError::TotpRequired
            | ApiError::InvalidTotp => StatusCode::UNAUTHORIZED,
            ApiError::AccountLocked(_) => StatusCode::LOCKED,
            ApiError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::CsrfFailed | ApiError::Forbidden | ApiError::ClientBlocked => {
                StatusCode::FORBIDDEN
            }
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::InvalidToken => StatusCode::GONE,
            ApiError::EmailNotConfigured | ApiError::NotReady(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let request_id = REQUEST_ID.try_with(Clone::clone).unwrap_or_default();
        let message = match self {
            ApiError::Internal(detail) => {
                tracing::error!(%request_id, error = %detail, "internal error");
                format!("internal error; quote request id {request_id} when reporting it")
            }
            other => other.to_string(),
        };
        let mut res = HttpResponse::build(self.status_code());
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
        res.json(ErrorBody {
            code: self.code(),
            message,
            request_id,
        })
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ApiError::NotFound,
            StoreError::Conflict(what) => {
                ApiError::Conflict(format!("this {what} is already taken"))
            }
            other => ApiError::internal(other),
        }
    }
}

impl From<Invalid> for ApiError {
    fn from(e: Invalid) -> Self {
        ApiError::Validation(e.to_string())
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
