//! Shared helpers for the emulator's integration tests: a real grammers 0.11 client wired
//! to the emulator with a provisioned key, raw-document helpers, and bounded waits.

#![allow(dead_code)]

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use grammers_client::Client;
use grammers_client::sender::{ConnectionParams, NoRetries, SenderPool};
use grammers_client::tl;
use grammers_mtsender::InvocationError;
use grammers_session::updates::UpdatesLike;
use tgemu::{Emulator, EmulatorHandle};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub const API_ID: i32 = 12345;
pub const WAIT: Duration = Duration::from_secs(20);

/// Awaits `f` for at most [`WAIT`]; a hang fails the test instead of blocking CI.
pub async fn within<T>(f: impl Future<Output = T>) -> T {
    match tokio::time::timeout(WAIT, f).await {
        Ok(v) => v,
        Err(_) => panic!("timed out after {WAIT:?}"),
    }
}

pub async fn emulator() -> EmulatorHandle {
    Emulator::builder()
        .dcs(&[1, 2, 4])
        .home_dc(2)
        .start()
        .await
        .expect("emulator starts")
}

pub struct TestClient {
    pub client: Client,
    pub updates: Option<mpsc::Receiver<UpdatesLike>>,
    pub runner: JoinHandle<()>,
}

impl Drop for TestClient {
    fn drop(&mut self) {
        self.runner.abort();
    }
}

/// A grammers client on `key` (no automatic FLOOD_WAIT sleeping, so tests see errors).
pub fn client(emu: &EmulatorHandle, key: [u8; 256]) -> TestClient {
    let session = Arc::new(emu.session_for(key, emu.home_dc()));
    let params = ConnectionParams {
        retry_policy: Box::new(NoRetries),
        ..Default::default()
    };
    let SenderPool {
        runner,
        handle,
        updates,
    } = SenderPool::with_configuration(session, API_ID, params);
    let client = Client::new(handle);
    let runner = tokio::spawn(runner.run());
    TestClient {
        client,
        updates: Some(updates),
        runner,
    }
}

/// A client signed in as `token`.
pub async fn bot(emu: &EmulatorHandle, token: &str) -> TestClient {
    let key = emu.provision_auth_key();
    let c = client(emu, key);
    within(c.client.bot_sign_in(token, "hash"))
        .await
        .expect("bot signs in");
    c
}

/// The file location of the document in a raw message.
pub fn document_location(msg: &tl::enums::Message) -> Option<tl::types::InputDocumentFileLocation> {
    let tl::enums::Message::Message(m) = msg else {
        return None;
    };
    let Some(tl::enums::MessageMedia::Document(media)) = &m.media else {
        return None;
    };
    let Some(tl::enums::Document::Document(d)) = &media.document else {
        return None;
    };
    Some(tl::types::InputDocumentFileLocation {
        id: d.id,
        access_hash: d.access_hash,
        file_reference: d.file_reference.clone(),
        thumb_size: String::new(),
    })
}

pub fn get_file(
    location: &tl::types::InputDocumentFileLocation,
    offset: i64,
    limit: i32,
) -> tl::functions::upload::GetFile {
    tl::functions::upload::GetFile {
        precise: false,
        cdn_supported: false,
        location: tl::enums::InputFileLocation::InputDocumentFileLocation(location.clone()),
        offset,
        limit,
    }
}

pub fn file_bytes(file: tl::enums::upload::File) -> Vec<u8> {
    match file {
        tl::enums::upload::File::File(f) => f.bytes,
        other => panic!("unexpected {other:?}"),
    }
}

/// The Telegram error of a failed call, as (code, name-with-value) e.g. (420, "FLOOD_WAIT_30").
pub fn rpc_error<T: std::fmt::Debug>(result: Result<T, InvocationError>) -> (i32, String) {
    match result {
        Err(InvocationError::Rpc(e)) => {
            let name = match e.value {
                Some(v) if e.name.ends_with('_') || !e.name.contains(char::is_numeric) => {
                    format!("{}_{v}", e.name)
                }
                _ => e.name.clone(),
            };
            (e.code, name)
        }
        other => panic!("expected an RPC error, got {other:?}"),
    }
}

/// Fetches channel messages by id with the raw `channels.getMessages`.
pub async fn channel_message(
    client: &Client,
    channel: tgemu::ChannelInfo,
    msg_id: i32,
) -> Result<tl::enums::Message, InvocationError> {
    let req = tl::functions::channels::GetMessages {
        channel: tl::enums::InputChannel::Channel(tl::types::InputChannel {
            channel_id: channel.channel_id,
            access_hash: channel.access_hash,
        }),
        id: vec![tl::enums::InputMessage::Id(tl::types::InputMessageId {
            id: msg_id,
        })],
    };
    let messages = within(client.invoke(&req)).await?;
    match messages {
        tl::enums::messages::Messages::ChannelMessages(m) => {
            Ok(m.messages.into_iter().next().expect("one message"))
        }
        other => panic!("unexpected {other:?}"),
    }
}

/// FILE_MIGRATE → export at home → import at `dc`.
pub async fn copy_auth(client: &Client, dc: i32) -> Result<(), InvocationError> {
    let tl::enums::auth::ExportedAuthorization::Authorization(exported) =
        within(client.invoke(&tl::functions::auth::ExportAuthorization { dc_id: dc })).await?;
    within(client.invoke_in_dc(
        dc,
        &tl::functions::auth::ImportAuthorization {
            id: exported.id,
            bytes: exported.bytes,
        },
    ))
    .await?;
    Ok(())
}
