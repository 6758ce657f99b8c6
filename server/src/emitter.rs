//! [`Emitter`]: a write-only client manager, for processes that are not servers (a worker, a
//! script) and want to reach the clients of the servers on a broker channel — python-socketio's
//! `RedisManager(url, write_only=True)`, with `disconnect` that works.

use std::sync::Arc;

use serde::Serialize;
use sockio_core::api::{EmitError, PublishError};
use sockio_core::payload::{self, Args};
use sockio_core::pubsub::Message;
use sockio_core::socketio::packet::RESERVED_EVENTS;

use crate::manager::{Bus, ClientManager, Cluster, start_bus};
use crate::pubsub_backend::PubSubBackend;
use crate::runtime::Runtime;

/// Publishes emits, room changes and disconnects for the servers on a broker channel. Cheap to
/// clone. Messages carry this emitter's own host id, so servers act on them as on another
/// server's.
#[derive(Clone)]
pub struct Emitter<Rt: Runtime> {
    bus: Arc<Bus>,
    _runtime: std::marker::PhantomData<fn() -> Rt>,
}

impl<Rt: Runtime> std::fmt::Debug for Emitter<Rt> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emitter")
            .field("host_id", &self.bus.host_id)
            .finish()
    }
}

impl<Rt: Runtime> Emitter<Rt> {
    /// An emitter on `manager`'s broker and channel. The broker is reached on the first publish
    /// (and reached again after a failure). Its publisher runs on the runtime current where it
    /// is made (on tokio, the runtime of the calling task): once that runtime shuts down, every
    /// emit fails with "the publisher stopped", so make it where it will be used.
    pub fn new(manager: &ClientManager) -> Self {
        Self::on(&Cluster::Broker(Box::new(manager.clone())))
    }

    /// An emitter publishing through `backend`, a message queue of the application's own (see
    /// [`ServerBuilder::custom_client_manager`](crate::ServerBuilder::custom_client_manager)).
    pub fn custom(backend: impl PubSubBackend) -> Self {
        Self::on(&Cluster::Custom(Arc::new(backend)))
    }

    fn on(cluster: &Cluster) -> Self {
        Emitter {
            bus: start_bus(&Rt::default(), cluster),
            _runtime: std::marker::PhantomData,
        }
    }

    /// Emits `event` with `data` (a tuple for several arguments) to every client of `/`, or as
    /// configured with the builder methods; `.send().await` publishes.
    pub fn emit<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> ExternalEmit<Rt> {
        self.build(event, payload::to_args(data).map_err(EmitError::from))
    }

    /// Emits `event` with arguments already in wire form.
    pub fn emit_args(&self, event: &str, args: Args) -> ExternalEmit<Rt> {
        self.build(event, Ok(args))
    }

    fn build(&self, event: &str, args: Result<Args, EmitError>) -> ExternalEmit<Rt> {
        ExternalEmit {
            emitter: self.clone(),
            event: event.to_owned(),
            args,
            spec: Targets {
                namespace: Arc::from("/"),
                rooms: Vec::new(),
                skip: Vec::new(),
            },
        }
    }

    /// Puts client `sid` of `namespace` in `room`, on whichever server holds it. The order is
    /// sid, room, namespace (python-socketio's manager takes sid, namespace, room: all strings,
    /// so a port that keeps Python's order compiles and names the wrong room).
    pub async fn enter_room(
        &self,
        sid: &str,
        room: &str,
        namespace: &str,
    ) -> Result<(), PublishError> {
        self.bus
            .publish(&Message::EnterRoom {
                sid: sid.to_owned(),
                room: room.to_owned(),
                namespace: sockio_core::api::namespace_or_root(namespace).to_owned(),
                host_id: Some(self.bus.host_id.clone()),
            })
            .await
    }

    /// Takes client `sid` of `namespace` out of `room`, on whichever server holds it (sid,
    /// room, namespace, as [`enter_room`](Self::enter_room)).
    pub async fn leave_room(
        &self,
        sid: &str,
        room: &str,
        namespace: &str,
    ) -> Result<(), PublishError> {
        self.bus
            .publish(&Message::LeaveRoom {
                sid: sid.to_owned(),
                room: room.to_owned(),
                namespace: sockio_core::api::namespace_or_root(namespace).to_owned(),
                host_id: Some(self.bus.host_id.clone()),
            })
            .await
    }

    /// Empties `room` of `namespace` on every server.
    pub async fn close_room(&self, room: &str, namespace: &str) -> Result<(), PublishError> {
        self.bus
            .publish(&Message::CloseRoom {
                room: room.to_owned(),
                namespace: sockio_core::api::namespace_or_root(namespace).to_owned(),
                host_id: Some(self.bus.host_id.clone()),
            })
            .await
    }

    /// Disconnects client `sid` of `namespace`, on whichever server holds it.
    pub async fn disconnect(&self, sid: &str, namespace: &str) -> Result<(), PublishError> {
        self.bus
            .publish(&Message::Disconnect {
                sid: sid.to_owned(),
                namespace: sockio_core::api::namespace_or_root(namespace).to_owned(),
                host_id: Some(self.bus.host_id.clone()),
            })
            .await
    }
}

/// An emit of an [`Emitter`] being configured; `.send().await` publishes it.
#[must_use = "an emit does nothing until sent"]
pub struct ExternalEmit<Rt: Runtime> {
    emitter: Emitter<Rt>,
    event: String,
    args: Result<Args, EmitError>,
    spec: Targets,
}

/// Who an external emit goes to (the fields `emit_target_methods!` sets).
struct Targets {
    namespace: Arc<str>,
    rooms: Vec<String>,
    skip: Vec<String>,
}

impl<Rt: Runtime> ExternalEmit<Rt> {
    sockio_core::emit_target_methods!();

    /// Publishes; `Ok` once the broker took it.
    pub async fn send(self) -> Result<(), EmitError> {
        if RESERVED_EVENTS.contains(&self.event.as_str()) {
            return Err(EmitError::ReservedEvent(self.event));
        }
        let message = Message::Emit {
            event: self.event,
            args: self.args?,
            namespace: self.spec.namespace.to_string(),
            rooms: self.spec.rooms,
            skip: self.spec.skip,
            callback: None,
            host_id: Some(self.emitter.bus.host_id.clone()),
        };
        Ok(self.emitter.bus.publish(&message).await?)
    }
}
