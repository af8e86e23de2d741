//! `updates.getState`, `updates.getDifference`, `updates.getChannelDifference`: real
//! differences from the pts-numbered mailboxes, so a client that saw a gap (or was
//! offline) gets exactly the events it missed.

use grammers_tl_types as tl;

use super::messages::resolve_channel;
use super::{Answer, Ctx, Reply, args, bytes};
use crate::world::{Event, Mailbox, unix_now};

pub(super) fn get_state(ctx: &Ctx<'_>, user: i64) -> Answer {
    let s = ctx.world.lock();
    let pts = s.accounts.get(&user).map(|a| a.mailbox.pts).unwrap_or(1);
    bytes(&tl::enums::updates::State::State(
        tl::types::updates::State {
            pts,
            qts: 0,
            date: unix_now(),
            seq: 0,
            unread_count: 0,
        },
    ))
}

/// Splits the events after `pts` into messages that still exist and delete updates.
fn events(
    ctx: &Ctx<'_>,
    s: &crate::world::State,
    mailbox: &Mailbox,
    pts: i32,
    limit: usize,
    viewer: i64,
    channel: Option<i64>,
) -> (
    Vec<tl::enums::Message>,
    Vec<tl::enums::Update>,
    Vec<Option<i64>>,
    i32,
) {
    let (mut messages, mut others, mut users) = (Vec::new(), Vec::new(), Vec::new());
    let mut last_pts = pts;
    for (event_pts, event) in mailbox.events_after(pts).take(limit) {
        last_pts = *event_pts;
        match event {
            Event::New(id) => {
                if let Some(m) = mailbox.messages.get(id) {
                    users.push(m.from);
                    if let crate::world::Peer::User(u) = m.peer {
                        users.push(Some(u));
                    }
                    messages.push(ctx.world.render_message(s, m, viewer));
                }
            }
            Event::Edited(id) => {
                // An edit of a message deleted since is covered by the deletion.
                if let Some(m) = mailbox.messages.get(id) {
                    let message = ctx.world.render_message(s, m, viewer);
                    others.push(match channel {
                        None => tl::enums::Update::EditMessage(tl::types::UpdateEditMessage {
                            message,
                            pts: *event_pts,
                            pts_count: 1,
                        }),
                        Some(_) => tl::enums::Update::EditChannelMessage(
                            tl::types::UpdateEditChannelMessage {
                                message,
                                pts: *event_pts,
                                pts_count: 1,
                            },
                        ),
                    });
                }
            }
            Event::Deleted(id) => others.push(match channel {
                None => tl::enums::Update::DeleteMessages(tl::types::UpdateDeleteMessages {
                    messages: vec![*id],
                    pts: *event_pts,
                    pts_count: 1,
                }),
                Some(channel_id) => tl::enums::Update::DeleteChannelMessages(
                    tl::types::UpdateDeleteChannelMessages {
                        channel_id,
                        messages: vec![*id],
                        pts: *event_pts,
                        pts_count: 1,
                    },
                ),
            }),
        }
    }
    (messages, others, users, last_pts)
}

pub(super) fn get_difference(ctx: &Ctx<'_>, user: i64, query: &[u8]) -> Reply {
    let req: tl::functions::updates::GetDifference = args(query)?;
    let s = ctx.world.lock();
    let Some(account) = s.accounts.get(&user) else {
        return Err(super::error(400, "USER_ID_INVALID"));
    };
    let mailbox = &account.mailbox;
    let date = unix_now();
    if mailbox.pts <= req.pts {
        return Ok(bytes(&tl::enums::updates::Difference::Empty(
            tl::types::updates::DifferenceEmpty { date, seq: 0 },
        )));
    }
    let (new_messages, other_updates, users, _) =
        events(ctx, &s, mailbox, req.pts, usize::MAX, user, None);
    let users = ctx.world.users_for(&s, user, &users);
    Ok(bytes(&tl::enums::updates::Difference::Difference(
        tl::types::updates::Difference {
            new_messages,
            new_encrypted_messages: vec![],
            other_updates,
            chats: vec![],
            users,
            state: tl::enums::updates::State::State(tl::types::updates::State {
                pts: mailbox.pts,
                qts: req.qts,
                date,
                seq: 0,
                unread_count: 0,
            }),
        },
    )))
}

pub(super) fn get_channel_difference(ctx: &Ctx<'_>, user: i64, query: &[u8]) -> Reply {
    let req: tl::functions::updates::GetChannelDifference = args(query)?;
    let s = ctx.world.lock();
    let (channel, admin) = resolve_channel(&s, &req.channel, user)?;
    let mailbox = &channel.mailbox;
    let channel_id = channel.info.channel_id;
    if mailbox.pts <= req.pts {
        return Ok(bytes(&tl::enums::updates::ChannelDifference::Empty(
            tl::types::updates::ChannelDifferenceEmpty {
                r#final: true,
                pts: mailbox.pts,
                timeout: None,
            },
        )));
    }
    let limit = req.limit.clamp(1, 100_000);
    // Telegram: "pts + limit < remote pts" → too many updates; the answer carries the
    // dialog (top message, current pts) and its newest messages instead of the events.
    if req.pts.saturating_add(limit) < mailbox.pts {
        return Ok(too_long(ctx, &s, channel, admin, user));
    }
    let limit = limit as usize;
    let (new_messages, other_updates, users, last_pts) =
        events(ctx, &s, mailbox, req.pts, limit, user, Some(channel_id));
    let users = ctx.world.users_for(&s, user, &users);
    let chats = ctx
        .world
        .channel_chat(&s, channel_id, admin)
        .into_iter()
        .collect();
    Ok(bytes(&tl::enums::updates::ChannelDifference::Difference(
        tl::types::updates::ChannelDifference {
            r#final: last_pts == mailbox.pts,
            pts: last_pts,
            timeout: None,
            new_messages,
            other_updates,
            chats,
            users,
        },
    )))
}

/// `updates.channelDifferenceTooLong` for `channel`: its top message and current pts.
fn too_long(
    ctx: &Ctx<'_>,
    s: &crate::world::State,
    channel: &crate::world::Channel,
    admin: bool,
    viewer: i64,
) -> super::Answer {
    let mailbox = &channel.mailbox;
    let channel_id = channel.info.channel_id;
    let top = mailbox.top_message();
    let dialog = tl::enums::Dialog::Dialog(tl::types::Dialog {
        pinned: false,
        unread_mark: false,
        view_forum_as_messages: false,
        peer: super::render::peer_channel(channel_id),
        top_message: top.map_or(0, |m| m.id),
        read_inbox_max_id: 0,
        read_outbox_max_id: 0,
        unread_count: 0,
        unread_mentions_count: 0,
        unread_reactions_count: 0,
        unread_poll_votes_count: 0,
        notify_settings: tl::enums::PeerNotifySettings::Settings(tl::types::PeerNotifySettings {
            show_previews: None,
            silent: None,
            mute_until: None,
            ios_sound: None,
            android_sound: None,
            other_sound: None,
            stories_muted: None,
            stories_hide_sender: None,
            stories_ios_sound: None,
            stories_android_sound: None,
            stories_other_sound: None,
        }),
        pts: Some(mailbox.pts),
        draft: None,
        folder_id: None,
        ttl_period: None,
    });
    let messages = top
        .map(|m| ctx.world.render_message(s, m, viewer))
        .into_iter()
        .collect();
    let chats = ctx
        .world
        .channel_chat(s, channel_id, admin)
        .into_iter()
        .collect();
    bytes(&tl::enums::updates::ChannelDifference::TooLong(
        tl::types::updates::ChannelDifferenceTooLong {
            r#final: true,
            timeout: None,
            dialog,
            messages,
            chats,
            users: vec![],
        },
    ))
}
