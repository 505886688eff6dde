//! The error codes of each specification family, as enums: a response can only carry a code
//! its family defines.

wire_enum! {
    /// Authorization endpoint errors, sent back to the client's redirect URI (RFC 6749
    /// §4.1.2.1, OIDC Core §3.1.2.6).
    pub enum AuthorizeErrorCode {
        InvalidRequest = "invalid_request",
        UnauthorizedClient = "unauthorized_client",
        AccessDenied = "access_denied",
        UnsupportedResponseType = "unsupported_response_type",
        InvalidScope = "invalid_scope",
        ServerError = "server_error",
        TemporarilyUnavailable = "temporarily_unavailable",
        InteractionRequired = "interaction_required",
        LoginRequired = "login_required",
        AccountSelectionRequired = "account_selection_required",
        ConsentRequired = "consent_required",
        InvalidRequestUri = "invalid_request_uri",
        InvalidRequestObject = "invalid_request_object",
        RequestNotSupported = "request_not_supported",
        RequestUriNotSupported = "request_uri_not_supported",
        RegistrationNotSupported = "registration_not_supported",
        /// RFC 8707 §2: the `resource` is unknown, malformed, or not one this request may name.
        InvalidTarget = "invalid_target",
        /// The sign-in cannot meet the level the request or the client requires (OpenID
        /// Connect Core Unmet Authentication Requirements 1.0 §2).
        UnmetAuthenticationRequirements = "unmet_authentication_requirements",
    }
}

wire_enum! {
    /// Token endpoint errors (RFC 6749 §5.2), also answered by revocation (RFC 7009 §2.2.1)
    /// and introspection (RFC 7662 §2.3).
    pub enum TokenErrorCode {
        InvalidRequest = "invalid_request",
        /// 401 with `WWW-Authenticate` (RFC 6749 §5.2).
        InvalidClient = "invalid_client",
        InvalidGrant = "invalid_grant",
        UnauthorizedClient = "unauthorized_client",
        UnsupportedGrantType = "unsupported_grant_type",
        InvalidScope = "invalid_scope",
        /// RFC 7009 §2.2.1.
        UnsupportedTokenType = "unsupported_token_type",
        /// RFC 8707 §2: the `resource` is unknown, malformed, or not one this grant covers.
        InvalidTarget = "invalid_target",
        /// RFC 8628 §3.5: the person has not answered yet; poll again after the interval.
        AuthorizationPending = "authorization_pending",
        /// RFC 8628 §3.5: polled too soon; the interval grows by five seconds.
        SlowDown = "slow_down",
        /// RFC 8628 §3.5: the person denied the device (or the approval was withdrawn).
        AccessDenied = "access_denied",
        /// RFC 8628 §3.5: the device code expired before the person answered.
        ExpiredToken = "expired_token",
        /// RFC 9449 §5: the DPoP proof is missing a part, malformed, or does not verify.
        InvalidDpopProof = "invalid_dpop_proof",
        /// RFC 9449 §8: the proof must carry the nonce of the `DPoP-Nonce` header.
        UseDpopNonce = "use_dpop_nonce",
    }
}

wire_enum! {
    /// Errors at a protected resource, in `WWW-Authenticate: Bearer` (RFC 6750 §3.1).
    pub enum BearerErrorCode {
        InvalidRequest = "invalid_request",
        InvalidToken = "invalid_token",
        InsufficientScope = "insufficient_scope",
        /// RFC 9449 §7.1: the DPoP proof presented with the token does not verify.
        InvalidDpopProof = "invalid_dpop_proof",
    }
}

wire_enum! {
    /// Dynamic registration errors (RFC 7591 §3.2.2; RFC 7592 §2.2 answers with the same).
    pub enum RegistrationErrorCode {
        InvalidRedirectUri = "invalid_redirect_uri",
        InvalidClientMetadata = "invalid_client_metadata",
        InvalidSoftwareStatement = "invalid_software_statement",
        UnapprovedSoftwareStatement = "unapproved_software_statement",
        /// A body that is not client metadata at all, or an update that breaks RFC 7592 §2.2
        /// (RFC 6749 §5.2's code for a malformed request).
        InvalidRequest = "invalid_request",
    }
}
