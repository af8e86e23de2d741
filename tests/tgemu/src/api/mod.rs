//! The API surface: one request body in, one [`Answer`] out, with Telegram's semantics.
//!
//! `dispatch` strips the connection wrappers (`invokeWithLayer`, `initConnection`,
//! `invokeWithoutUpdates`, `invokeAfterMsg`), counts the call, applies the per-bot and
//! per-DC faults (FLOOD_WAIT, INTERNAL), checks authorisation and routes by constructor
//! id to the handler modules. Called by the connection driver, possibly from a delayed
//! task; never blocks, never panics: unknown methods answer
//! 400 `METHOD_NOT_IMPLEMENTED_BY_EMULATOR`.

mod auth;
pub(crate) mod files;
mod messages;
pub(crate) mod render;
mod updates;

use std::net::SocketAddr;
use std::sync::Arc;

use grammers_tl_types::{self as tl, Cursor, Deserializable, Identifiable};

use crate::content::Content;
use crate::counters::Counters;
use crate::faults::Faults;
use crate::world::World;

/// What a request is answered with inside `rpc_result`.
pub(crate) enum Answer {
    /// A serialised TL object.
    Bytes(Vec<u8>),
    Error {
        code: i32,
        message: String,
    },
    /// An `upload.file` whose bytes the writer generates straight into its buffer.
    File(FilePart),
}

pub(crate) struct FilePart {
    pub doc_id: i64,
    pub content: Arc<Content>,
    pub offset: u64,
    pub len: usize,
    pub mtime: i32,
}

/// A handler's outcome: `Err` carries an error answer so `?` works on parsing.
pub(crate) type Reply = Result<Answer, Answer>;

pub(crate) fn error(code: i32, message: impl Into<String>) -> Answer {
    Answer::Error {
        code,
        message: message.into(),
    }
}

pub(crate) fn bytes(value: &impl tl::Serializable) -> Answer {
    Answer::Bytes(value.to_bytes())
}

/// Everything a handler may look at, for one request on one connection.
pub(crate) struct Ctx<'a> {
    pub dc: i32,
    pub key_id: u64,
    pub world: &'a World,
    pub faults: &'a Faults,
    pub counters: &'a Counters,
    pub dc_options: &'a [(i32, SocketAddr)],
    /// Refuse answers whose message body grammers 0.11 cannot receive.
    pub grammers_safe: bool,
}

impl Ctx<'_> {
    /// The account this connection's key is signed in as on this DC.
    pub fn user(&self) -> Option<i64> {
        self.world
            .lock()
            .authorizations
            .get(&(self.dc, self.key_id))
            .copied()
    }
}

/// Reads whatever is left of a request (the `query:!X` of a wrapper).
struct Rest(Vec<u8>);

impl Deserializable for Rest {
    fn deserialize(buf: &mut Cursor<'_>) -> tl::deserialize::Result<Self> {
        let mut out = Vec::new();
        buf.read_to_end(&mut out)?;
        Ok(Rest(out))
    }
}

fn constructor(body: &[u8]) -> u32 {
    body.get(..4)
        .and_then(|b| b.try_into().ok())
        .map(u32::from_le_bytes)
        .unwrap_or(0)
}

/// Removes invokeWithLayer / initConnection / invokeWithoutUpdates / invokeAfterMsg.
fn unwrap_query(body: &[u8]) -> Result<Vec<u8>, Answer> {
    let mut current = body.to_vec();
    for _ in 0..8 {
        let rest = &current.get(4..).unwrap_or(&[]);
        let inner = match constructor(&current) {
            tl::functions::InvokeWithLayer::<()>::CONSTRUCTOR_ID => {
                tl::functions::InvokeWithLayer::<Rest>::from_bytes(rest).map(|q| q.query.0)
            }
            tl::functions::InitConnection::<()>::CONSTRUCTOR_ID => {
                tl::functions::InitConnection::<Rest>::from_bytes(rest).map(|q| q.query.0)
            }
            tl::functions::InvokeWithoutUpdates::<()>::CONSTRUCTOR_ID => {
                tl::functions::InvokeWithoutUpdates::<Rest>::from_bytes(rest).map(|q| q.query.0)
            }
            tl::functions::InvokeAfterMsg::<()>::CONSTRUCTOR_ID => {
                tl::functions::InvokeAfterMsg::<Rest>::from_bytes(rest).map(|q| q.query.0)
            }
            _ => return Ok(current),
        };
        current = inner.map_err(|_| error(400, "INPUT_REQUEST_INVALID"))?;
    }
    Err(error(400, "INPUT_REQUEST_TOO_DEEP"))
}

/// Parses the request's arguments (the body after its constructor id).
pub(crate) fn args<T: Deserializable>(body: &[u8]) -> Result<T, Answer> {
    T::from_bytes(body.get(4..).unwrap_or(&[])).map_err(|_| error(400, "INPUT_REQUEST_INVALID"))
}

/// The TL name of a request (after unwrapping), for counters and logs.
pub(crate) fn method_name(body: &[u8]) -> &'static str {
    tl::name_for_id(constructor(body))
}

/// The TL name of a request as the trace shows it: the wrapped query's, `?` if malformed.
pub(crate) fn traced_method(body: &[u8]) -> &'static str {
    unwrap_query(body).map_or("?", |query| method_name(&query))
}

/// Answers one request. `unit` is a uniform random number in [0, 1) for the error rate.
pub(crate) fn dispatch(ctx: &Ctx<'_>, body: &[u8], unit: f64) -> Answer {
    let query = match unwrap_query(body) {
        Ok(q) => q,
        Err(answer) => return answer,
    };
    let id = constructor(&query);
    let user = ctx.user();
    ctx.counters.request(ctx.dc, user, method_name(&query));

    if let Some(left) = user.and_then(|u| ctx.faults.flood_wait_left(u, ctx.faults.now())) {
        return error(420, format!("FLOOD_WAIT_{left}"));
    }
    if ctx.faults.internal_error(ctx.dc, user, unit) {
        return error(500, "INTERNAL");
    }

    use tl::functions as f;
    // Methods that work before sign-in.
    match id {
        f::help::GetConfig::CONSTRUCTOR_ID => return auth::get_config(ctx),
        f::auth::ImportBotAuthorization::CONSTRUCTOR_ID => {
            return auth::import_bot(ctx, &query).unwrap_or_else(|a| a);
        }
        f::auth::ImportAuthorization::CONSTRUCTOR_ID => {
            return auth::import_authorization(ctx, &query).unwrap_or_else(|a| a);
        }
        f::help::GetNearestDc::CONSTRUCTOR_ID => return auth::nearest_dc(ctx),
        _ => {}
    }
    let Some(user) = user else {
        return error(401, "AUTH_KEY_UNREGISTERED");
    };
    let result = match id {
        f::users::GetUsers::CONSTRUCTOR_ID => auth::get_users(ctx, user, &query),
        f::auth::ExportAuthorization::CONSTRUCTOR_ID => {
            auth::export_authorization(ctx, user, &query)
        }
        f::auth::LogOut::CONSTRUCTOR_ID => Ok(auth::log_out(ctx)),
        f::updates::GetState::CONSTRUCTOR_ID => Ok(updates::get_state(ctx, user)),
        f::updates::GetDifference::CONSTRUCTOR_ID => updates::get_difference(ctx, user, &query),
        f::updates::GetChannelDifference::CONSTRUCTOR_ID => {
            updates::get_channel_difference(ctx, user, &query)
        }
        f::channels::GetMessages::CONSTRUCTOR_ID => messages::channel_messages(ctx, user, &query),
        f::messages::GetMessages::CONSTRUCTOR_ID => messages::private_messages(ctx, user, &query),
        f::messages::SendMessage::CONSTRUCTOR_ID => messages::send_message(ctx, user, &query),
        f::messages::SendMedia::CONSTRUCTOR_ID => messages::send_media(ctx, user, &query),
        f::messages::ForwardMessages::CONSTRUCTOR_ID => messages::forward(ctx, user, &query),
        f::upload::GetFile::CONSTRUCTOR_ID => files::get_file(ctx, user, &query),
        _ => Err(error(400, "METHOD_NOT_IMPLEMENTED_BY_EMULATOR")),
    };
    result.unwrap_or_else(|answer| answer)
}
