//! `IKEEXT_EM_POLICY2`: AuthIP extended mode, the optional second (user) authentication
//! that runs after quick mode (spec §7).

use serde::{Deserialize, Serialize};

use super::auth::{AuthenticationMethod, ImpersonationType};

/// `IKEEXT_EM_POLICY2`, carried by AuthIP quick-mode policies as `em_policy`.
///
/// ```json
/// { "authentication_methods": [{ "type": "kerberos" }],
///   "initiator_impersonation_type": "socket_principal" }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtendedModePolicy {
    /// `authenticationMethods`, tried in order; AuthIP methods only.
    pub authentication_methods: Vec<AuthenticationMethod>,
    /// `initiatorImpersonationType`.
    #[serde(default)]
    pub initiator_impersonation_type: ImpersonationType,
}

impl ExtendedModePolicy {
    /// An EM policy trying `methods` in order, without impersonation.
    pub fn new(methods: impl Into<Vec<AuthenticationMethod>>) -> Self {
        Self {
            authentication_methods: methods.into(),
            initiator_impersonation_type: ImpersonationType::None,
        }
    }

    /// Kerberos as the socket's user: the user half of Remote Identity Authorization
    /// (spec §4.2), whose identity then reaches `ALE_REMOTE_USER_ID`.
    pub fn kerberos_socket_principal() -> Self {
        Self {
            authentication_methods: vec![AuthenticationMethod::kerberos()],
            initiator_impersonation_type: ImpersonationType::SocketPrincipal,
        }
    }
}
