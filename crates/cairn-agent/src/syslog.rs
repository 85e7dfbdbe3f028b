//! The `syslog` source: RFC 3164 and RFC 5424 messages over UDP and TCP (octet-counted
//! framing per RFC 6587, or newline-delimited), parsed by `cairn-formats`.
//!
//! Receivers push into a bounded channel; when the pipeline is blocked (full buffer),
//! TCP readers block too and TCP flow control pushes back on senders. UDP has no
//! back-pressure: datagrams that find the channel full are counted as dropped. Syslog
//! has no acknowledgements, so delivery is at least once from the moment a message
//! is in the disk buffer.

use std::io::{BufRead, BufReader, Read};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::Arc;

use serde::Deserialize;

use crate::metrics::Metrics;
use crate::AgentError;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyslogSourceConfig {
    /// UDP listen address, e.g. `0.0.0.0:514`.
    #[serde(default)]
    pub udp: Option<String>,
    /// TCP listen address.
    #[serde(default)]
    pub tcp: Option<String>,
    #[serde(default = "default_max")]
    pub max_message_bytes: usize,
}

fn default_max() -> usize {
    64 << 10
}

/// One received message and its sender.
#[derive(Debug)]
pub struct Message {
    pub text: Vec<u8>,
    pub peer: String,
}

/// Running listeners: the receiving end and the bound addresses (useful when port 0
/// was asked for).
#[derive(Debug)]
pub struct Listening {
    pub rx: Receiver<Message>,
    pub udp: Option<String>,
    pub tcp: Option<String>,
}

/// Starts the listeners.
pub fn start(cfg: &SyslogSourceConfig, metrics: Arc<Metrics>) -> Result<Listening, AgentError> {
    let (tx, rx) = mpsc::sync_channel::<Message>(10_000);
    let max = cfg.max_message_bytes.max(1);
    let mut udp_addr = None;
    let mut tcp_addr = None;
    if let Some(addr) = &cfg.udp {
        let sock =
            UdpSocket::bind(addr).map_err(|e| AgentError::io(format!("binding udp {addr}"), e))?;
        udp_addr = sock.local_addr().ok().map(|a| a.to_string());
        let tx = tx.clone();
        std::thread::Builder::new()
            .name("syslog-udp".into())
            .spawn(move || udp_loop(sock, tx, max, metrics))
            .map_err(|e| AgentError::io("spawning the udp listener", e))?;
    }
    if let Some(addr) = &cfg.tcp {
        let listener = TcpListener::bind(addr)
            .map_err(|e| AgentError::io(format!("binding tcp {addr}"), e))?;
        tcp_addr = listener.local_addr().ok().map(|a| a.to_string());
        let tx = tx.clone();
        std::thread::Builder::new()
            .name("syslog-tcp".into())
            .spawn(move || {
                for conn in listener.incoming().flatten() {
                    let tx = tx.clone();
                    let _ = std::thread::Builder::new()
                        .name("syslog-conn".into())
                        .spawn(move || tcp_conn(conn, tx, max));
                }
            })
            .map_err(|e| AgentError::io("spawning the tcp listener", e))?;
    }
    Ok(Listening {
        rx,
        udp: udp_addr,
        tcp: tcp_addr,
    })
}

fn udp_loop(sock: UdpSocket, tx: SyncSender<Message>, max: usize, metrics: Arc<Metrics>) {
    let mut buf = vec![0u8; 65_536];
    loop {
        let Ok((n, peer)) = sock.recv_from(&mut buf) else {
            continue;
        };
        let mut text = buf[..n.min(max)].to_vec();
        while text
            .last()
            .is_some_and(|b| *b == b'\n' || *b == b'\r' || *b == 0)
        {
            text.pop();
        }
        match tx.try_send(Message {
            text,
            peer: peer.to_string(),
        }) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                Metrics::add(&metrics.dropped, 1);
            }
            Err(TrySendError::Disconnected(_)) => return,
        }
    }
}

/// Reads framed messages from one connection: octet counting (`<len> <msg>`) when a
/// frame starts with a digit, else one message per line.
fn tcp_conn(conn: TcpStream, tx: SyncSender<Message>, max: usize) {
    let peer = conn.peer_addr().map(|a| a.to_string()).unwrap_or_default();
    let mut r = BufReader::new(conn);
    loop {
        let first = match r.fill_buf() {
            Ok([]) | Err(_) => return,
            Ok(b) => b[0],
        };
        let text = if first.is_ascii_digit() {
            let mut len_text = Vec::new();
            if r.read_until(b' ', &mut len_text).is_err() {
                return;
            }
            let len: usize = match std::str::from_utf8(&len_text)
                .ok()
                .and_then(|t| t.trim().parse().ok())
            {
                Some(l) => l,
                None => {
                    tracing::warn!(%peer, "syslog: bad octet count; closing");
                    return;
                }
            };
            let mut msg = vec![0u8; len.min(max)];
            if r.read_exact(&mut msg).is_err() {
                return;
            }
            // Skip what exceeds the cap, keeping the framing.
            if len > max
                && std::io::copy(&mut (&mut r).take((len - max) as u64), &mut std::io::sink())
                    .is_err()
            {
                return;
            }
            msg
        } else {
            let mut line = Vec::new();
            if r.read_until(b'\n', &mut line).is_err() || line.is_empty() {
                return;
            }
            while line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                line.pop();
            }
            line.truncate(max);
            line
        };
        if text.is_empty() {
            continue;
        }
        if tx
            .send(Message {
                text,
                peer: peer.clone(),
            })
            .is_err()
        {
            return;
        }
    }
}
