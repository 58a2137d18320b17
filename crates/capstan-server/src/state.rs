//! `AppState`: the assembly of every capability's state, which the routers are given.
//! Each handler takes the state of its own capability (`State<FlagsState>`,
//! `State<Arc<Core>>`, ...), drawn from this one with `FromRef`, so a capability sees only
//! what it owns and what `core` shares.

use std::sync::Arc;

use axum::extract::FromRef;
use capstan_store::Store;

use crate::core::clock::Clock;
use crate::core::rate_limit::RateLimiter;
use crate::core::state::{Core, Settings};
use crate::flags::FlagsState;
use crate::placements::PlacementsState;

#[derive(Clone)]
pub struct AppState {
    pub core: Arc<Core>,
    pub flags: FlagsState,
    pub placements: PlacementsState,
}

impl AppState {
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        settings: Settings,
        rate_limiter: RateLimiter,
    ) -> AppState {
        let core = Arc::new(Core::new(store, clock, settings, rate_limiter));
        AppState {
            flags: FlagsState::new(core.clone()),
            placements: PlacementsState::new(core.clone()),
            core,
        }
    }
}

impl FromRef<AppState> for Arc<Core> {
    fn from_ref(state: &AppState) -> Arc<Core> {
        state.core.clone()
    }
}

impl FromRef<AppState> for FlagsState {
    fn from_ref(state: &AppState) -> FlagsState {
        state.flags.clone()
    }
}

impl FromRef<AppState> for PlacementsState {
    fn from_ref(state: &AppState) -> PlacementsState {
        state.placements.clone()
    }
}
