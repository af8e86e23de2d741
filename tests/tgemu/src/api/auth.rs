//! Sign-in and authorisation transfer: `help.getConfig`, `auth.importBotAuthorization`,
//! `auth.exportAuthorization` / `auth.importAuthorization`, `users.getUsers`.
//! Authorisation is per (DC, auth key), as in Telegram: a key signed in on DC 2 is
//! `AUTH_KEY_UNREGISTERED` on DC 4 until an exported authorisation is imported there.

use grammers_tl_types as tl;
use rand::RngCore;

use super::{Answer, Ctx, Reply, args, bytes, error, render};
use crate::world::{State, unix_now};

pub(super) fn get_config(ctx: &Ctx<'_>) -> Answer {
    bytes(&render::config(ctx.dc, ctx.dc_options, unix_now()))
}

pub(super) fn nearest_dc(ctx: &Ctx<'_>) -> Answer {
    bytes(&tl::enums::NearestDc::Dc(tl::types::NearestDc {
        country: "ZZ".to_owned(),
        this_dc: ctx.dc,
        nearest_dc: ctx.dc,
    }))
}

fn authorization(ctx: &Ctx<'_>, s: &State, user: i64) -> Answer {
    let users = ctx.world.users_for(s, user, &[Some(user)]);
    match users.into_iter().next() {
        Some(user) => bytes(&tl::enums::auth::Authorization::Authorization(
            tl::types::auth::Authorization {
                setup_password_required: false,
                otherwise_relogin_days: None,
                tmp_sessions: None,
                future_auth_token: None,
                user,
            },
        )),
        None => error(400, "USER_ID_INVALID"),
    }
}

pub(super) fn import_bot(ctx: &Ctx<'_>, query: &[u8]) -> Reply {
    let req: tl::functions::auth::ImportBotAuthorization = args(query)?;
    let mut s = ctx.world.lock();
    let Some(&user) = s.tokens.get(&req.bot_auth_token) else {
        return Err(error(400, "ACCESS_TOKEN_INVALID"));
    };
    s.authorizations.insert((ctx.dc, ctx.key_id), user);
    if let Some(account) = s.accounts.get_mut(&user) {
        account.home_dc = Some(ctx.dc);
    }
    ctx.counters.update(|c| c.bot_sign_ins += 1);
    Ok(authorization(ctx, &s, user))
}

pub(super) fn export_authorization(ctx: &Ctx<'_>, user: i64, query: &[u8]) -> Reply {
    let req: tl::functions::auth::ExportAuthorization = args(query)?;
    if req.dc_id == ctx.dc || !ctx.dc_options.iter().any(|(dc, _)| *dc == req.dc_id) {
        return Err(error(400, "DC_ID_INVALID"));
    }
    let mut token = vec![0u8; 32];
    rand::thread_rng().fill_bytes(&mut token);
    ctx.world
        .lock()
        .exported
        .insert(token.clone(), (user, req.dc_id));
    ctx.counters.update(|c| c.auth_exports += 1);
    Ok(bytes(
        &tl::enums::auth::ExportedAuthorization::Authorization(
            tl::types::auth::ExportedAuthorization {
                id: user,
                bytes: token,
            },
        ),
    ))
}

pub(super) fn import_authorization(ctx: &Ctx<'_>, query: &[u8]) -> Reply {
    let req: tl::functions::auth::ImportAuthorization = args(query)?;
    let mut s = ctx.world.lock();
    match s.exported.get(&req.bytes) {
        Some(&(user, dc)) if user == req.id && dc == ctx.dc => {
            s.exported.remove(&req.bytes);
            s.authorizations.insert((ctx.dc, ctx.key_id), user);
            ctx.counters.update(|c| c.auth_imports += 1);
            Ok(authorization(ctx, &s, user))
        }
        _ => Err(error(400, "AUTH_BYTES_INVALID")),
    }
}

pub(super) fn log_out(ctx: &Ctx<'_>) -> Answer {
    ctx.world
        .lock()
        .authorizations
        .remove(&(ctx.dc, ctx.key_id));
    bytes(&tl::enums::auth::LoggedOut::Out(
        tl::types::auth::LoggedOut {
            future_auth_token: None,
        },
    ))
}

pub(super) fn get_users(ctx: &Ctx<'_>, user: i64, query: &[u8]) -> Reply {
    let req: tl::functions::users::GetUsers = args(query)?;
    let ids: Vec<Option<i64>> = req
        .id
        .iter()
        .map(|input| match input {
            tl::enums::InputUser::UserSelf => Some(user),
            tl::enums::InputUser::User(u) => Some(u.user_id),
            tl::enums::InputUser::FromMessage(u) => Some(u.user_id),
            tl::enums::InputUser::Empty => None,
        })
        .collect();
    let s = ctx.world.lock();
    Ok(bytes(&ctx.world.users_for(&s, user, &ids)))
}
