//! The one error of the client: the server's `errorCode`, HTTP status and message, with the
//! statuses BlueMind gives a meaning to (401, 403, 404) as their own variants.

/// What went wrong talking to BlueMind. Never carries a key or a password.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 401: the API key or session is unknown or expired.
    #[error("BlueMind refused the API key or session ({message})")]
    Unauthorized {
        /// The server's message, key removed.
        message: String,
    },
    /// 403: the caller lacks a permission (`PERMISSION_DENIED`).
    #[error("BlueMind denied permission for {what}: {message}")]
    Forbidden {
        /// The call.
        what: String,
        /// The server's message.
        message: String,
    },
    /// 404 (`NOT_FOUND`); most lookups answer 204 instead, which is `Ok(None)`.
    #[error("BlueMind found nothing for {what}: {message}")]
    NotFound {
        /// The call.
        what: String,
        /// The server's message.
        message: String,
    },
    /// Any other failure status (BlueMind maps most faults, `FORBIDDEN` included, to 500).
    #[error("BlueMind answered {status} to {what}: {code} {message}")]
    Server {
        /// The call.
        what: String,
        /// HTTP status.
        status: u16,
        /// The server's `errorCode`, or its `errorType` when it has none.
        code: String,
        /// The server's message.
        message: String,
    },
    /// The server could not be reached, or the connection broke.
    #[error("cannot reach BlueMind at {url}")]
    Transport {
        /// The base URL.
        url: String,
        /// The cause.
        #[source]
        source: reqwest::Error,
    },
    /// The answer was not the JSON we expect.
    #[error("unexpected answer from BlueMind to {what}: {detail}")]
    Decode {
        /// The call.
        what: String,
        /// What did not fit.
        detail: String,
    },
    /// The client cannot be built (CA file, URL).
    #[error("invalid BlueMind client settings: {0}")]
    Config(String),
}

impl ApiError {
    /// A transport failure. reqwest's error text carries the request URL, and the URL of a
    /// key's deletion names the key (`/auth/keys/{sid}`): the URL is taken out, so no error
    /// can ever show a live key; the base URL stands in for it.
    pub fn transport(base: &str, source: reqwest::Error) -> Self {
        ApiError::Transport {
            url: base.to_string(),
            source: source.without_url(),
        }
    }

    /// The server's `errorCode`, when there is one.
    pub fn code(&self) -> Option<&str> {
        match self {
            ApiError::Server { code, .. } => Some(code),
            ApiError::Forbidden { .. } => Some("PERMISSION_DENIED"),
            ApiError::NotFound { .. } => Some("NOT_FOUND"),
            ApiError::Unauthorized { .. } => Some("AUTHENTICATION_FAIL"),
            _ => None,
        }
    }

    /// Whether the certificate of the server was refused.
    pub fn is_certificate(&self) -> bool {
        match self {
            ApiError::Transport { source, .. } => {
                let mut cause: Option<&dyn std::error::Error> = Some(source);
                while let Some(c) = cause {
                    let text = c.to_string().to_ascii_lowercase();
                    if text.contains("certificate") || text.contains("unknownissuer") {
                        return true;
                    }
                    cause = c.source();
                }
                false
            }
            _ => false,
        }
    }
}
