//! A TCP gate in front of a test server: it forwards bytes while open; [`TcpGate::close`]
//! closes its listening socket (new connections are refused, as when the server is down) and
//! cuts every connection through it, and [`TcpGate::open`] listens on the same port again.

use std::net::SocketAddr;
use std::sync::Mutex;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

pub struct TcpGate {
    /// The gate's own address: point the proxy here.
    pub addr: SocketAddr,
    target: SocketAddr,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl TcpGate {
    /// An open gate on an ephemeral loopback port, forwarding to `target`.
    pub async fn start(target: SocketAddr) -> TcpGate {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let gate = TcpGate {
            addr: listener.local_addr().expect("addr"),
            target,
            task: Mutex::new(None),
        };
        gate.spawn(listener);
        gate
    }

    fn spawn(&self, listener: TcpListener) {
        let target = self.target;
        let task = tokio::spawn(async move {
            // Dropped with this task: aborts every forwarding connection.
            let mut connections = JoinSet::new();
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    continue;
                };
                connections.spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(target).await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                });
                while connections.try_join_next().is_some() {}
            }
        });
        *self.task.lock().unwrap() = Some(task);
    }

    /// Stops listening (connections are refused) and cuts the open connections.
    pub async fn close(&self) {
        let task = self.task.lock().unwrap().take();
        if let Some(task) = task {
            task.abort();
            let _ = task.await;
        }
    }

    /// Listens again on the same port.
    pub async fn open(&self) {
        let listener = TcpListener::bind(self.addr).await.expect("rebind the gate");
        self.spawn(listener);
    }
}
