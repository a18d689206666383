//! Which handler serves which queue: the registry `serve` gives the consumers.

use std::sync::Arc;

use crate::amqp::handler::Handlers;
use crate::amqp::topology;
use crate::crs::events::ReferAndMonitor;
use crate::engine::Engine;
use crate::upstream::UpstreamClient;

/// The handlers of every integration this build handles.
pub fn registry(engine: &Arc<Engine>, upstream: &UpstreamClient) -> Handlers {
    Handlers::new().with(
        topology::REFER_AND_MONITOR,
        Arc::new(ReferAndMonitor::new(engine.clone(), upstream.clone())),
    )
}
