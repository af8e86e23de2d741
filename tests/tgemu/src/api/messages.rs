//! Reading and sending messages: `channels.getMessages`, `messages.getMessages`,
//! `messages.sendMessage`, `messages.sendMedia` (a document re-sent by `InputDocument`, a
//! photo by `InputPhoto`, each with the sender's file reference),
//! `messages.forwardMessages`. Channel access needs membership (`CHANNEL_PRIVATE`
//! otherwise); everything a bot sends is recorded for `World::sent_by`.
//! `channels.getMessages` takes at most 200 ids (missing ones answer `messageEmpty`) and
//! each call is recorded in the counters, so tests can see a back-fill's batches.

use grammers_tl_types as tl;

use super::{Ctx, Reply, args, bytes, error};
use crate::world::{Channel, Media, Peer, SentMessage, State, StoredMessage, World, unix_now};

/// Most ids one `channels.getMessages` may name (Telegram's limit for bots and users).
const MAX_GET_MESSAGES: usize = 200;

/// The channel an `InputChannel` names, if `user` may read it, and whether it is admin.
pub(super) fn resolve_channel<'s>(
    s: &'s State,
    input: &tl::enums::InputChannel,
    user: i64,
) -> Result<(&'s Channel, bool), super::Answer> {
    let (id, hash) = match input {
        tl::enums::InputChannel::Channel(c) => (c.channel_id, Some(c.access_hash)),
        tl::enums::InputChannel::FromMessage(c) => (c.channel_id, None),
        tl::enums::InputChannel::Empty => return Err(error(400, "CHANNEL_INVALID")),
    };
    let channel = s
        .channels
        .get(&id)
        .ok_or_else(|| error(400, "CHANNEL_INVALID"))?;
    // Telegram lets bots name a channel with access hash 0 (tdlib and pyrogram rely on it
    // for channels a bot has not seen in this session); users need the real hash.
    let is_bot = s.accounts.get(&user).is_some_and(|a| a.bot);
    if hash.is_some_and(|h| h != channel.info.access_hash && !(is_bot && h == 0)) {
        return Err(error(400, "CHANNEL_INVALID"));
    }
    match channel.members.get(&user) {
        Some(&admin) => Ok((channel, admin)),
        None => Err(error(400, "CHANNEL_PRIVATE")),
    }
}

fn input_peer(s: &State, input: &tl::enums::InputPeer, user: i64) -> Result<Peer, super::Answer> {
    match input {
        tl::enums::InputPeer::User(u) => match s.accounts.get(&u.user_id) {
            Some(a) if a.info.access_hash == u.access_hash => Ok(Peer::User(u.user_id)),
            _ => Err(error(400, "PEER_ID_INVALID")),
        },
        tl::enums::InputPeer::Channel(c) => {
            let input = tl::enums::InputChannel::Channel(tl::types::InputChannel {
                channel_id: c.channel_id,
                access_hash: c.access_hash,
            });
            resolve_channel(s, &input, user).map(|(ch, _)| Peer::Channel(ch.info.channel_id))
        }
        _ => Err(error(400, "PEER_ID_INVALID")),
    }
}

fn ids(input: &[tl::enums::InputMessage]) -> Vec<i32> {
    input
        .iter()
        .map(|m| match m {
            tl::enums::InputMessage::Id(m) => m.id,
            _ => 0,
        })
        .collect()
}

pub(super) fn channel_messages(ctx: &Ctx<'_>, user: i64, query: &[u8]) -> Reply {
    let req: tl::functions::channels::GetMessages = args(query)?;
    if req.id.len() > MAX_GET_MESSAGES {
        return Err(error(400, "LIMIT_INVALID"));
    }
    let s = ctx.world.lock();
    let (channel, admin) = resolve_channel(&s, &req.channel, user)?;
    let ids = ids(&req.id);
    ctx.counters.update(|c| {
        c.channel_get_messages
            .push(crate::counters::GetMessagesCall {
                user,
                channel_id: channel.info.channel_id,
                ids: ids.clone(),
            });
    });
    let messages: Vec<_> = ids
        .into_iter()
        .map(|id| match channel.mailbox.messages.get(&id) {
            Some(m) => ctx.world.render_message(&s, m, user),
            None => super::render::empty_message(id),
        })
        .collect();
    let chats = ctx
        .world
        .channel_chat(&s, channel.info.channel_id, admin)
        .into_iter()
        .collect();
    Ok(bytes(&tl::enums::messages::Messages::ChannelMessages(
        tl::types::messages::ChannelMessages {
            inexact: false,
            pts: channel.mailbox.pts,
            count: messages.len() as i32,
            offset_id_offset: None,
            messages,
            topics: vec![],
            chats,
            users: vec![],
        },
    )))
}

pub(super) fn private_messages(ctx: &Ctx<'_>, user: i64, query: &[u8]) -> Reply {
    let req: tl::functions::messages::GetMessages = args(query)?;
    let s = ctx.world.lock();
    let Some(account) = s.accounts.get(&user) else {
        return Err(error(400, "USER_ID_INVALID"));
    };
    let mut users = vec![];
    let messages: Vec<_> = ids(&req.id)
        .into_iter()
        .map(|id| match account.mailbox.messages.get(&id) {
            Some(m) => {
                users.push(m.from);
                if let Peer::User(u) = m.peer {
                    users.push(Some(u));
                }
                ctx.world.render_message(&s, m, user)
            }
            None => super::render::empty_message(id),
        })
        .collect();
    let users = ctx.world.users_for(&s, user, &users);
    Ok(bytes(&tl::enums::messages::Messages::Messages(
        tl::types::messages::Messages {
            messages,
            topics: vec![],
            chats: vec![],
            users,
        },
    )))
}

/// What one delivered message produced for the sender's `Updates`.
struct Delivered {
    update: tl::enums::Update,
    msg_id: i32,
}

/// Stores a message the bot sends to `to` and pushes it; returns the sender's update.
fn deliver(
    world: &World,
    s: &mut State,
    bot: i64,
    to: Peer,
    text: &str,
    media: Option<Media>,
    fwd_from: Option<(Peer, i32)>,
) -> Result<Delivered, super::Answer> {
    let date = unix_now();
    match to {
        Peer::User(target) => {
            let outgoing = StoredMessage {
                id: 0,
                from: Some(bot),
                peer: Peer::User(target),
                out: true,
                date,
                text: text.to_owned(),
                media,
                fwd_from: fwd_from.map(|f| f.0),
            };
            let incoming = StoredMessage {
                peer: Peer::User(bot),
                out: false,
                ..outgoing.clone()
            };
            let msg_id = world
                .add_private_message(s, bot, outgoing)
                .ok_or_else(|| error(400, "PEER_ID_INVALID"))?;
            if target != bot {
                world.add_private_message(s, target, incoming);
            }
            let account = s
                .accounts
                .get(&bot)
                .ok_or_else(|| error(400, "PEER_ID_INVALID"))?;
            let stored = account.mailbox.messages.get(&msg_id).cloned();
            let pts = account.mailbox.pts;
            let message = stored.map(|m| world.render_message(s, &m, bot));
            let message = message.ok_or_else(|| error(500, "INTERNAL"))?;
            Ok(Delivered {
                update: tl::enums::Update::NewMessage(tl::types::UpdateNewMessage {
                    message,
                    pts,
                    pts_count: 1,
                }),
                msg_id,
            })
        }
        Peer::Channel(channel_id) => {
            let admin = s
                .channels
                .get(&channel_id)
                .and_then(|c| c.members.get(&bot).copied());
            if admin != Some(true) {
                return Err(error(403, "CHAT_WRITE_FORBIDDEN"));
            }
            let post = StoredMessage {
                id: 0,
                from: None,
                peer: to,
                out: false,
                date,
                text: text.to_owned(),
                media,
                fwd_from: fwd_from.map(|f| f.0),
            };
            let msg_id = world
                .add_channel_message(s, channel_id, post)
                .ok_or_else(|| error(400, "CHANNEL_INVALID"))?;
            let channel = s
                .channels
                .get(&channel_id)
                .ok_or_else(|| error(400, "CHANNEL_INVALID"))?;
            let pts = channel.mailbox.pts;
            let stored = channel.mailbox.messages.get(&msg_id).cloned();
            let mut message = stored.map(|m| world.render_message(s, &m, bot));
            if let Some(tl::enums::Message::Message(m)) = message.as_mut() {
                m.out = true;
            }
            let message = message.ok_or_else(|| error(500, "INTERNAL"))?;
            Ok(Delivered {
                update: tl::enums::Update::NewChannelMessage(tl::types::UpdateNewChannelMessage {
                    message,
                    pts,
                    pts_count: 1,
                }),
                msg_id,
            })
        }
    }
}

fn send(ctx: &Ctx<'_>, bot: i64, peer: &tl::enums::InputPeer, items: Vec<Outgoing>) -> Reply {
    let mut s = ctx.world.lock();
    let to = input_peer(&s, peer, bot)?;
    let mut updates = Vec::new();
    for item in items {
        let delivered = deliver(
            ctx.world,
            &mut s,
            bot,
            to,
            &item.text,
            item.media,
            item.fwd_from,
        )?;
        World::record_sent(
            &mut s,
            bot,
            SentMessage {
                peer: to,
                msg_id: delivered.msg_id,
                text: item.text,
                media_doc_id: match item.media {
                    Some(Media::Document(id)) => Some(id),
                    _ => None,
                },
                media_photo_id: match item.media {
                    Some(Media::Photo(id)) => Some(id),
                    _ => None,
                },
                forwarded_from: item.fwd_from,
            },
        );
        updates.push(tl::enums::Update::MessageId(tl::types::UpdateMessageId {
            id: delivered.msg_id,
            random_id: item.random_id,
        }));
        updates.push(delivered.update);
    }
    let (users, chats) = match to {
        Peer::User(u) => (ctx.world.users_for(&s, bot, &[Some(bot), Some(u)]), vec![]),
        Peer::Channel(c) => {
            let admin = s
                .channels
                .get(&c)
                .and_then(|ch| ch.members.get(&bot).copied());
            (
                vec![],
                ctx.world
                    .channel_chat(&s, c, admin == Some(true))
                    .into_iter()
                    .collect(),
            )
        }
    };
    Ok(bytes(&tl::enums::Updates::Updates(tl::types::Updates {
        updates,
        users,
        chats,
        date: unix_now(),
        seq: 0,
    })))
}

struct Outgoing {
    text: String,
    media: Option<Media>,
    fwd_from: Option<(Peer, i32)>,
    random_id: i64,
}

pub(super) fn send_message(ctx: &Ctx<'_>, bot: i64, query: &[u8]) -> Reply {
    let req: tl::functions::messages::SendMessage = args(query)?;
    let item = Outgoing {
        text: req.message,
        media: None,
        fwd_from: None,
        random_id: req.random_id,
    };
    send(ctx, bot, &req.peer, vec![item])
}

pub(super) fn send_media(ctx: &Ctx<'_>, bot: i64, query: &[u8]) -> Reply {
    let req: tl::functions::messages::SendMedia = args(query)?;
    let (media, access_hash, file_reference) = match &req.media {
        tl::enums::InputMedia::Document(media) => match &media.id {
            tl::enums::InputDocument::Document(d) => {
                (Media::Document(d.id), d.access_hash, &d.file_reference)
            }
            tl::enums::InputDocument::Empty => return Err(error(400, "MEDIA_INVALID")),
        },
        tl::enums::InputMedia::Photo(media) => match &media.id {
            tl::enums::InputPhoto::Photo(p) => {
                (Media::Photo(p.id), p.access_hash, &p.file_reference)
            }
            tl::enums::InputPhoto::Empty => return Err(error(400, "MEDIA_INVALID")),
        },
        _ => return Err(error(400, "MEDIA_INVALID")),
    };
    let id = {
        let s = ctx.world.lock();
        let known = match media {
            Media::Document(id) => s.documents.get(&id).map(|d| (id, d.info.access_hash)),
            Media::Photo(id) => s.photos.get(&id).map(|p| (id, p.info.access_hash)),
        };
        match known {
            Some((id, hash)) if hash == access_hash => id,
            _ => return Err(error(400, "MEDIA_INVALID")),
        }
    };
    let ttl = ctx.faults.file_reference_ttl_value();
    if ctx
        .world
        .check_file_reference(id, bot, file_reference, ttl)
        .is_err()
    {
        return Err(error(400, "FILE_REFERENCE_EXPIRED"));
    }
    let item = Outgoing {
        text: req.message,
        media: Some(media),
        fwd_from: None,
        random_id: req.random_id,
    };
    send(ctx, bot, &req.peer, vec![item])
}

pub(super) fn forward(ctx: &Ctx<'_>, bot: i64, query: &[u8]) -> Reply {
    let req: tl::functions::messages::ForwardMessages = args(query)?;
    if req.id.len() != req.random_id.len() {
        return Err(error(400, "RANDOM_ID_INVALID"));
    }
    let items = {
        let s = ctx.world.lock();
        let from = input_peer(&s, &req.from_peer, bot)?;
        let mailbox = match from {
            Peer::User(_) => s.accounts.get(&bot).map(|a| &a.mailbox),
            Peer::Channel(c) => s.channels.get(&c).map(|c| &c.mailbox),
        }
        .ok_or_else(|| error(400, "PEER_ID_INVALID"))?;
        let mut items = Vec::new();
        for (id, random_id) in req.id.iter().zip(&req.random_id) {
            let m = mailbox
                .messages
                .get(id)
                .ok_or_else(|| error(400, "MESSAGE_ID_INVALID"))?;
            if matches!(from, Peer::User(u) if m.peer != Peer::User(u)) {
                return Err(error(400, "MESSAGE_ID_INVALID"));
            }
            let origin = match (from, m.from) {
                (Peer::Channel(c), _) => Peer::Channel(c),
                (_, Some(u)) => Peer::User(u),
                (peer, None) => peer,
            };
            items.push(Outgoing {
                text: m.text.clone(),
                media: m.media,
                fwd_from: Some((origin, *id)),
                random_id: *random_id,
            });
        }
        items
    };
    send(ctx, bot, &req.to_peer, items)
}
