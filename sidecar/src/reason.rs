//! Why a handshake failed, as the `reason` label of
//! `minica_sidecar_handshake_failures_total`.

use std::io;

use rustls::{AlertDescription, CertificateError};

/// The reason a TLS handshake failed. The set is fixed (see the sidecar
/// contract) so that dashboards and alerts can rely on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FailureReason {
    /// The client sent no certificate (inbound).
    NoClientCert,
    /// The peer's chain does not lead to our CA (or the peer refused ours).
    UnknownCa,
    /// A signature in the chain does not verify.
    BadSignature,
    /// The peer's certificate is on the CRL.
    Revoked,
    /// The peer's certificate has expired.
    Expired,
    /// The peer's certificate is not valid yet.
    NotYetValid,
    /// The peer's identity is not in `--allow`.
    NotAllowed,
    /// The server's certificate is not valid for `--server-name` (outbound).
    WrongName,
    /// The handshake did not finish within `--handshake-timeout`.
    Timeout,
    /// The peer broke the protocol, spoke another protocol, or hung up.
    Protocol,
    /// Anything else.
    Other,
}

impl FailureReason {
    /// Every reason, in label order.
    pub const ALL: [FailureReason; 11] = [
        FailureReason::NoClientCert,
        FailureReason::UnknownCa,
        FailureReason::BadSignature,
        FailureReason::Revoked,
        FailureReason::Expired,
        FailureReason::NotYetValid,
        FailureReason::NotAllowed,
        FailureReason::WrongName,
        FailureReason::Timeout,
        FailureReason::Protocol,
        FailureReason::Other,
    ];

    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureReason::NoClientCert => "no_client_cert",
            FailureReason::UnknownCa => "unknown_ca",
            FailureReason::BadSignature => "bad_signature",
            FailureReason::Revoked => "revoked",
            FailureReason::Expired => "expired",
            FailureReason::NotYetValid => "not_yet_valid",
            FailureReason::NotAllowed => "not_allowed",
            FailureReason::WrongName => "wrong_name",
            FailureReason::Timeout => "timeout",
            FailureReason::Protocol => "protocol",
            FailureReason::Other => "other",
        }
    }

    /// Index into [`FailureReason::ALL`].
    pub fn index(self) -> usize {
        Self::ALL.iter().position(|r| *r == self).unwrap_or(10)
    }

    /// Classifies a rustls error, ours or an alert the peer sent us.
    pub fn from_rustls(err: &rustls::Error) -> Self {
        use rustls::Error as E;
        match err {
            E::NoCertificatesPresented => FailureReason::NoClientCert,
            E::InvalidCertificate(cert) => Self::from_certificate_error(cert),
            E::AlertReceived(alert) => Self::from_alert(*alert),
            E::InvalidMessage(_)
            | E::InappropriateMessage { .. }
            | E::InappropriateHandshakeMessage { .. }
            | E::PeerIncompatible(_)
            | E::PeerMisbehaved(_)
            | E::DecryptError
            | E::HandshakeNotComplete
            | E::PeerSentOversizedRecord => FailureReason::Protocol,
            _ => FailureReason::Other,
        }
    }

    fn from_certificate_error(err: &CertificateError) -> Self {
        use CertificateError as C;
        match err {
            C::Expired | C::ExpiredContext { .. } => FailureReason::Expired,
            C::NotValidYet | C::NotValidYetContext { .. } => FailureReason::NotYetValid,
            C::Revoked => FailureReason::Revoked,
            C::UnknownIssuer => FailureReason::UnknownCa,
            C::BadSignature => FailureReason::BadSignature,
            C::NotValidForName | C::NotValidForNameContext { .. } => FailureReason::WrongName,
            C::ApplicationVerificationFailure => FailureReason::NotAllowed,
            _ => FailureReason::Other,
        }
    }

    /// Classifies an alert the peer sent (it refused our certificate, or
    /// the handshake).
    fn from_alert(alert: AlertDescription) -> Self {
        use AlertDescription as A;
        match alert {
            A::CertificateRequired => FailureReason::NoClientCert,
            A::UnknownCA => FailureReason::UnknownCa,
            A::CertificateExpired => FailureReason::Expired,
            A::CertificateRevoked => FailureReason::Revoked,
            A::AccessDenied => FailureReason::NotAllowed,
            A::DecryptError => FailureReason::BadSignature,
            A::BadCertificate | A::UnsupportedCertificate | A::CertificateUnknown => {
                FailureReason::Other
            }
            _ => FailureReason::Protocol,
        }
    }

    /// Classifies the I/O error a tokio-rustls handshake returned.
    pub fn from_io(err: &io::Error) -> Self {
        if let Some(tls) = err
            .get_ref()
            .and_then(|e| e.downcast_ref::<rustls::Error>())
        {
            return Self::from_rustls(tls);
        }
        match err.kind() {
            io::ErrorKind::TimedOut => FailureReason::Timeout,
            io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::InvalidData => FailureReason::Protocol,
            _ => FailureReason::Other,
        }
    }
}

impl std::fmt::Display for FailureReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_rustls_errors_to_reasons() {
        use rustls::Error as E;
        let cases = [
            (E::NoCertificatesPresented, "no_client_cert"),
            (E::InvalidCertificate(CertificateError::Expired), "expired"),
            (
                E::InvalidCertificate(CertificateError::NotValidYet),
                "not_yet_valid",
            ),
            (E::InvalidCertificate(CertificateError::Revoked), "revoked"),
            (
                E::InvalidCertificate(CertificateError::UnknownIssuer),
                "unknown_ca",
            ),
            (
                E::InvalidCertificate(CertificateError::BadSignature),
                "bad_signature",
            ),
            (
                E::InvalidCertificate(CertificateError::NotValidForName),
                "wrong_name",
            ),
            (
                E::InvalidCertificate(CertificateError::ApplicationVerificationFailure),
                "not_allowed",
            ),
            (E::AlertReceived(AlertDescription::UnknownCA), "unknown_ca"),
            (
                E::AlertReceived(AlertDescription::CertificateRequired),
                "no_client_cert",
            ),
            (
                E::AlertReceived(AlertDescription::ProtocolVersion),
                "protocol",
            ),
            (E::DecryptError, "protocol"),
            (E::General("x".into()), "other"),
        ];
        for (err, label) in cases {
            assert_eq!(FailureReason::from_rustls(&err).as_str(), label, "{err:?}");
        }
    }

    #[test]
    fn maps_io_errors_and_unwraps_rustls_inside() {
        let wrapped = io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(CertificateError::Revoked),
        );
        assert_eq!(FailureReason::from_io(&wrapped), FailureReason::Revoked);
        let eof = io::Error::from(io::ErrorKind::UnexpectedEof);
        assert_eq!(FailureReason::from_io(&eof), FailureReason::Protocol);
        let t = io::Error::from(io::ErrorKind::TimedOut);
        assert_eq!(FailureReason::from_io(&t), FailureReason::Timeout);
    }

    #[test]
    fn labels_are_the_contract_set_in_order() {
        let labels: Vec<_> = FailureReason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(
            labels,
            [
                "no_client_cert",
                "unknown_ca",
                "bad_signature",
                "revoked",
                "expired",
                "not_yet_valid",
                "not_allowed",
                "wrong_name",
                "timeout",
                "protocol",
                "other"
            ]
        );
        for (i, r) in FailureReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
        }
    }
}
