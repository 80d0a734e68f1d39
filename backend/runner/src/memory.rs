use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use tokio::sync::{Mutex, mpsc};

use crate::{Delivery, DispatchError, Dispatcher, Job};

/// The embedded default's dispatcher: a channel inside the process. Nothing survives a restart
/// here by design; the database sweeper re-dispatches unfinished rows on start.
pub struct InProcessDispatcher {
    sender: mpsc::UnboundedSender<Job>,
    receiver: Mutex<mpsc::UnboundedReceiver<Job>>,
}

impl InProcessDispatcher {
    /// A new, empty dispatcher.
    pub fn new() -> Self {
        let (sender, receiver) = mpsc::unbounded_channel();
        InProcessDispatcher {
            sender,
            receiver: Mutex::new(receiver),
        }
    }
}

impl Default for InProcessDispatcher {
    fn default() -> Self {
        Self::new()
    }
}

impl Dispatcher for InProcessDispatcher {
    fn enqueue(&self, job: Job) -> BoxFuture<'_, Result<(), DispatchError>> {
        let result = self.sender.send(job).map_err(|_| DispatchError::Closed);
        async move { result }.boxed()
    }

    fn receive(
        &self,
        max_wait: Duration,
    ) -> BoxFuture<'_, Result<Option<Delivery>, DispatchError>> {
        async move {
            let mut receiver = self.receiver.lock().await;
            match tokio::time::timeout(max_wait, receiver.recv()).await {
                Err(_elapsed) => Ok(None),
                Ok(None) => Err(DispatchError::Closed),
                Ok(Some(job)) => Ok(Some(Delivery {
                    job,
                    receipt: String::new(),
                    delivery_count: 1,
                })),
            }
        }
        .boxed()
    }

    fn ack<'a>(&'a self, _delivery: &'a Delivery) -> BoxFuture<'a, Result<(), DispatchError>> {
        async { Ok(()) }.boxed()
    }

    fn health(&self) -> BoxFuture<'_, Result<(), DispatchError>> {
        async { Ok(()) }.boxed()
    }

    fn name(&self) -> &'static str {
        "in-process"
    }
}
