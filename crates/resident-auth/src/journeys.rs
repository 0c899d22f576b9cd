//! What the journeys take and answer (docs/contract.md §4): the forms a resident fills in
//! and the views of a signed-in cabinet.

pub use crate::password::NewPassword;
pub use crate::service::{
    AddressForm, CabinetView, LinkedAccount, LoggedIn, RegistrationForm, SessionView, SignedIn,
};
