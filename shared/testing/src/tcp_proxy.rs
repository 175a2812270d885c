//! A TCP proxy on loopback that a test can stop, start again and freeze, to
//! stage a database outage or a database that hangs without touching the
//! shared server everyone else's tests use.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub struct TcpProxy {
    port: u16,
    target: SocketAddr,
    frozen: watch::Sender<bool>,
    running: Option<Running>,
}

struct Running {
    accept: JoinHandle<()>,
    connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl TcpProxy {
    /// Listens on a free loopback port and forwards every connection to `target`.
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let (frozen, _) = watch::channel(false);
        let mut proxy = Self {
            port,
            target,
            frozen,
            running: None,
        };
        proxy.running = Some(proxy.serve(listener));
        proxy
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Closes the port and cuts every open connection, like a server that died.
    pub async fn stop(&mut self) {
        if let Some(running) = self.running.take() {
            running.accept.abort();
            let _ = running.accept.await;
            let connections: Vec<_> = running.connections.lock().unwrap().drain(..).collect();
            for connection in connections {
                connection.abort();
                let _ = connection.await;
            }
        }
    }

    /// Listens on the same port again, like a server that came back.
    pub async fn restart(&mut self) {
        self.stop().await;
        let mut attempts = 0;
        let listener = loop {
            match TcpListener::bind(("127.0.0.1", self.port)).await {
                Ok(listener) => break listener,
                Err(e) if attempts < 50 => {
                    attempts += 1;
                    eprintln!("proxy port {} not free yet: {e}", self.port);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("cannot listen on port {} again: {e}", self.port),
            }
        };
        self.running = Some(self.serve(listener));
    }

    /// Keeps connections open (and accepts new ones) but passes nothing on,
    /// neither bytes nor a side hanging up: a database that hangs, or a
    /// network partition.
    pub fn freeze(&self) {
        self.frozen.send_replace(true);
    }

    pub fn thaw(&self) {
        self.frozen.send_replace(false);
    }

    fn serve(&self, listener: TcpListener) -> Running {
        let connections = Arc::new(Mutex::new(Vec::new()));
        let target = self.target;
        let frozen = self.frozen.subscribe();
        let accept = tokio::spawn({
            let connections = Arc::clone(&connections);
            async move {
                while let Ok((inbound, _)) = listener.accept().await {
                    let connection = tokio::spawn(forward(inbound, target, frozen.clone()));
                    connections.lock().unwrap().push(connection);
                }
            }
        });
        Running {
            accept,
            connections,
        }
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            running.accept.abort();
            for connection in running.connections.lock().unwrap().drain(..) {
                connection.abort();
            }
        }
    }
}

async fn forward(inbound: TcpStream, target: SocketAddr, frozen: watch::Receiver<bool>) {
    let Ok(outbound) = TcpStream::connect(target).await else {
        return;
    };
    let (client_read, client_write) = inbound.into_split();
    let (server_read, server_write) = outbound.into_split();
    // Whichever side closes first ends the connection for both.
    tokio::select! {
        _ = pump(client_read, server_write, frozen.clone()) => {}
        _ = pump(server_read, client_write, frozen) => {}
    }
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut frozen: watch::Receiver<bool>,
) {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let read = from.read(&mut buffer).await;
        // While frozen, what was read is held back, as by a stalled network,
        // and so is a close: a peer that gives up and hangs up behind a
        // partition is not heard from either.
        if frozen.wait_for(|is_frozen| !is_frozen).await.is_err() {
            return;
        }
        let n = match read {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if to.write_all(&buffer[..n]).await.is_err() {
            return;
        }
    }
}
