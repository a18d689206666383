//! Which handler serves which queue: the registry `serve` gives the consumers, and the
//! settings the integrations take (the Prison API's base URL, the movement table's feature
//! flags).

use std::sync::Arc;

use aggregates::custody::movement::{FeatureFlags, UnknownFlag};

use crate::amqp::handler::Handlers;
use crate::amqp::topology;
use crate::crs::events::ReferAndMonitor;
use crate::engine::Engine;
use crate::pcstd::PrisonCustodyStatus;
use crate::upstream::UpstreamClient;

/// Settings of the message handlers.
#[derive(Debug, Clone, Default)]
pub struct HandlerSettings {
    /// Base URL of the Prison API (prison identifier events ask it for the latest movement).
    pub prison_api_url: Option<String>,
    /// The movement table's feature flags.
    pub feature_flags: FeatureFlags,
}

/// A feature-flag setting that is not `name=true|false` for a known flag.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlagError {
    #[error("feature flag setting {0:?} is not name=true or name=false")]
    Syntax(String),
    #[error(transparent)]
    Unknown(#[from] UnknownFlag),
}

/// Parses `name=true|false` settings (`FEATURE_FLAGS`) over "every flag on".
pub fn feature_flags(settings: &[String]) -> Result<FeatureFlags, FlagError> {
    let mut flags = FeatureFlags::all_on();
    for setting in settings.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
        let (name, value) = setting
            .split_once('=')
            .ok_or_else(|| FlagError::Syntax(setting.to_string()))?;
        let on = match value.trim() {
            "true" => true,
            "false" => false,
            _ => return Err(FlagError::Syntax(setting.to_string())),
        };
        flags.set(name.trim(), on)?;
    }
    Ok(flags)
}

/// The handlers of every integration this build handles, with default settings (no Prison
/// API, every feature flag on).
pub fn registry(engine: &Arc<Engine>, upstream: &UpstreamClient) -> Handlers {
    registry_with(engine, upstream, &HandlerSettings::default())
}

/// The handlers of every integration this build handles.
pub fn registry_with(
    engine: &Arc<Engine>,
    upstream: &UpstreamClient,
    settings: &HandlerSettings,
) -> Handlers {
    Handlers::new()
        .with(
            topology::REFER_AND_MONITOR,
            Arc::new(ReferAndMonitor::new(engine.clone(), upstream.clone())),
        )
        .with(
            topology::PRISON_CUSTODY_STATUS,
            Arc::new(PrisonCustodyStatus::new(
                engine.clone(),
                upstream.clone(),
                settings.prison_api_url.clone(),
                settings.feature_flags.clone(),
            )),
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use aggregates::custody::movement::flags;

    #[test]
    fn flags_parse_and_name_the_bad_setting() {
        let parsed =
            feature_flags(&["messages_released_hospital=false".into(), " ".into()]).unwrap();
        assert!(!parsed.enabled(flags::RELEASED_HOSPITAL));
        assert!(parsed.enabled(flags::RELEASED_ABSCONDED));
        assert_eq!(
            feature_flags(&["messages_released_hospital".into()]),
            Err(FlagError::Syntax("messages_released_hospital".into()))
        );
        assert_eq!(
            feature_flags(&["messages_released_hospital=maybe".into()]),
            Err(FlagError::Syntax("messages_released_hospital=maybe".into()))
        );
        assert!(matches!(
            feature_flags(&["nope=true".into()]),
            Err(FlagError::Unknown(_))
        ));
    }
}
