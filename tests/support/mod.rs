//! Shared helpers of the integration tests.

use offboard::imap::{AuthMechanism, Credentials, Endpoint, Security, Timeouts, TlsSettings};
use secrecy::SecretString;
use std::time::Duration;
use testkit::Dovecot;

/// An endpoint on the harness, trusting its test CA.
pub fn endpoint(d: &Dovecot, security: Security) -> Endpoint {
    let port = if security == Security::Implicit {
        d.imaps_port
    } else {
        d.imap_port
    };
    let tls = TlsSettings {
        ca_file: Some(d.pki.ca_cert.clone()),
        insecure: false,
    };
    Endpoint::new("localhost", port, security, &tls, short_timeouts()).unwrap()
}

/// Timeouts short enough for a failing test to fail fast.
pub fn short_timeouts() -> Timeouts {
    Timeouts {
        connect: Duration::from_secs(5),
        io: Duration::from_secs(10),
    }
}

/// Credentials of a test user.
pub fn creds(user: &str, password: &str, mechanism: AuthMechanism) -> Credentials {
    Credentials {
        user: user.into(),
        secret: SecretString::from(password.to_string()),
        mechanism,
        authzid: None,
    }
}

/// What a run of the `offboard` binary gave: exit code and both streams.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<std::process::Output> for Run {
    fn from(out: std::process::Output) -> Self {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// Checks a `--json` report against the schema file of the repository, as a program consuming
/// it would.
pub fn assert_report_schema(doc: &serde_json::Value) {
    let errors = report_schema_errors(doc);
    assert!(
        errors.is_empty(),
        "the report does not follow schema/report.schema.json:\n{}",
        errors.join("\n")
    );
}

/// Where a document departs from the report schema.
pub fn report_schema_errors(doc: &serde_json::Value) -> Vec<String> {
    static SCHEMA: std::sync::OnceLock<jsonschema::Validator> = std::sync::OnceLock::new();
    let v = SCHEMA.get_or_init(|| {
        let text = include_str!("../../schema/report.schema.json");
        let schema: serde_json::Value = serde_json::from_str(text).expect("schema is JSON");
        jsonschema::validator_for(&schema).expect("schema is a valid JSON Schema")
    });
    v.iter_errors(doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}
