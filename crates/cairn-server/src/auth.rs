//! Authentication and authorization (work in progress by the lead).

/// Request extension set by in-process callers (the alert engine): the request runs
/// with the privileges of this user, as if they had authenticated. Extensions cannot
/// be set from the network, so this is not an authentication bypass.
#[derive(Clone, Debug)]
pub struct RunAs(pub String);
