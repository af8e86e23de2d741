//! Tests of [`super::SledSession`] and [`super::PoolSession`]: every trait method round trips,
//! and everything survives closing and reopening the database.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};
use std::sync::Arc;

use grammers_session::Session;
use grammers_session::types::{
    ChannelKind, ChannelState, DcOption, PeerAuth, PeerId, PeerInfo, UpdateState, UpdatesState,
};

use super::{PoolSession, SledSession};
use crate::store::Store;

const BOT: i64 = 777_000_111;

fn option(id: i32, port: u16, key: Option<u8>) -> DcOption {
    DcOption {
        id,
        ipv4: SocketAddrV4::new(Ipv4Addr::LOCALHOST, port),
        ipv6: SocketAddrV6::new(Ipv6Addr::LOCALHOST, port, 0, 0),
        auth_key: key.map(|b| [b; 256]),
    }
}

fn open(store: &Store, bot: i64) -> Arc<SledSession> {
    Arc::new(SledSession::open(store.sessions_tree().clone(), bot).unwrap())
}

#[tokio::test]
async fn fresh_session_has_grammers_defaults() {
    let store = Store::temporary().unwrap();
    let session = open(&store, BOT);
    assert_eq!(session.home_dc_id().unwrap(), 2);
    for dc in 1..=5 {
        let option = session.dc_option(dc).unwrap().unwrap();
        assert_eq!(option.auth_key, None);
    }
    assert_eq!(session.dc_option(99).unwrap(), None);
    assert_eq!(session.peer(PeerId::self_user()).await.unwrap(), None);
    assert_eq!(
        session.updates_state().await.unwrap(),
        UpdatesState::default()
    );
}

#[tokio::test]
async fn every_method_round_trips_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let me = PeerInfo::User {
        id: 5_000,
        auth: Some(PeerAuth::from_hash(-77)),
        bot: Some(true),
        is_self: Some(true),
    };
    let channel = PeerInfo::Channel {
        id: 1_234_567_890,
        auth: Some(PeerAuth::from_hash(99)),
        kind: Some(ChannelKind::Broadcast),
    };
    let chat = PeerInfo::Chat { id: 42 };
    let state = UpdatesState {
        pts: 10,
        qts: 3,
        date: 1_700_000_000,
        seq: 4,
        channels: vec![ChannelState { id: 1, pts: 8 }],
    };
    {
        let store = Store::open(dir.path()).unwrap();
        let session = open(&store, BOT);
        session.set_home_dc_id(4).await.unwrap();
        session
            .set_dc_option(&option(2, 1002, Some(2)))
            .await
            .unwrap();
        session
            .set_dc_option(&option(4, 1004, Some(4)))
            .await
            .unwrap();
        session
            .set_dc_option(&option(200, 1200, None))
            .await
            .unwrap();
        session.cache_peer(me.clone()).await.unwrap();
        session
            .cache_peers(vec![channel.clone(), chat.clone()])
            .await
            .unwrap();
        session
            .set_update_state(UpdateState::All(state.clone()))
            .await
            .unwrap();
        session
            .set_update_state(UpdateState::Primary {
                pts: 11,
                date: 1_700_000_001,
                seq: 5,
            })
            .await
            .unwrap();
        session
            .set_update_state(UpdateState::Secondary { qts: 6 })
            .await
            .unwrap();
        session
            .set_update_state(UpdateState::Channel { id: 1, pts: 9 })
            .await
            .unwrap();
        session
            .set_update_state(UpdateState::Channel { id: 2, pts: 1 })
            .await
            .unwrap();
        session.mark_media_dc_authorized(4).await.unwrap();
        store.flush().await.unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    let session = open(&store, BOT);
    assert_eq!(session.home_dc_id().unwrap(), 4);
    assert_eq!(
        session.dc_option(2).unwrap(),
        Some(option(2, 1002, Some(2)))
    );
    assert_eq!(
        session.dc_option(4).unwrap(),
        Some(option(4, 1004, Some(4)))
    );
    assert_eq!(
        session.dc_option(200).unwrap(),
        Some(option(200, 1200, None))
    );
    assert_eq!(
        session.peer(PeerId::self_user()).await.unwrap(),
        Some(me.clone())
    );
    assert_eq!(session.peer(me.id()).await.unwrap(), Some(me));
    assert_eq!(
        session.peer(channel.id()).await.unwrap(),
        Some(channel.clone())
    );
    assert_eq!(session.peer(chat.id()).await.unwrap(), Some(chat));
    let peer_ref = session.peer_ref(channel.id()).await.unwrap().unwrap();
    assert_eq!(peer_ref.auth.hash(), 99);
    assert_eq!(
        session.updates_state().await.unwrap(),
        UpdatesState {
            pts: 11,
            qts: 6,
            date: 1_700_000_001,
            seq: 5,
            channels: vec![
                ChannelState { id: 1, pts: 9 },
                ChannelState { id: 2, pts: 1 }
            ],
        }
    );
    assert!(session.media_dc_authorized(4).unwrap());
    assert!(!session.media_dc_authorized(5).unwrap());
}

#[tokio::test]
async fn cache_peer_merges_like_grammers_memory_session() {
    let store = Store::temporary().unwrap();
    let session = open(&store, BOT);
    let with_hash = PeerInfo::User {
        id: 9,
        auth: Some(PeerAuth::from_hash(5)),
        bot: None,
        is_self: None,
    };
    let without_hash = PeerInfo::User {
        id: 9,
        auth: None,
        bot: Some(false),
        is_self: None,
    };
    session.cache_peer(with_hash).await.unwrap();
    session.cache_peer(without_hash).await.unwrap();
    assert_eq!(
        session.peer(PeerId::user(9).unwrap()).await.unwrap(),
        Some(PeerInfo::User {
            id: 9,
            auth: Some(PeerAuth::from_hash(5)),
            bot: Some(false),
            is_self: None,
        })
    );
}

#[tokio::test]
async fn bots_do_not_see_each_others_sessions() {
    let store = Store::temporary().unwrap();
    let first = open(&store, 1);
    let second = open(&store, 12);
    first.set_dc_option(&option(2, 1, Some(1))).await.unwrap();
    first.set_home_dc_id(4).await.unwrap();
    first.mark_media_dc_authorized(4).await.unwrap();
    // A prefix of "bot/1/" must not leak into "bot/12/".
    let second_reopened = open(&store, 12);
    assert_eq!(second.dc_option(2).unwrap().unwrap().auth_key, None);
    assert_eq!(
        second_reopened.dc_option(2).unwrap().unwrap().auth_key,
        None
    );
    assert_eq!(second_reopened.home_dc_id().unwrap(), 2);
    assert!(!second_reopened.media_dc_authorized(4).unwrap());
}

#[tokio::test]
async fn a_new_auth_key_forgets_the_media_import() {
    let store = Store::temporary().unwrap();
    let session = open(&store, BOT);
    session.set_dc_option(&option(4, 1, Some(1))).await.unwrap();
    session.mark_media_dc_authorized(4).await.unwrap();
    // getConfig rewrites the address with the same key: the import still holds.
    session.set_dc_option(&option(4, 2, Some(1))).await.unwrap();
    assert!(session.media_dc_authorized(4).unwrap());
    session.set_dc_option(&option(4, 2, Some(9))).await.unwrap();
    assert!(!session.media_dc_authorized(4).unwrap());
}

#[test]
fn malformed_stored_key_is_a_typed_error() {
    let store = Store::temporary().unwrap();
    let session = open(&store, BOT);
    let bad = super::StoredDcOption {
        ipv4: SocketAddrV4::new(Ipv4Addr::LOCALHOST, 1),
        ipv6: SocketAddrV6::new(Ipv6Addr::LOCALHOST, 1, 0, 0),
        auth_key: Some(vec![1, 2, 3]),
    };
    session.put(&session.dc_key(3), &bad).unwrap();
    match SledSession::open(store.sessions_tree().clone(), BOT) {
        Err(super::SessionError::BadAuthKey { dc_id, len, .. }) => {
            assert_eq!((dc_id, len), (3, 3));
        }
        other => panic!("expected BadAuthKey, got {:?}", other.err()),
    }
}

fn view(shared: &Arc<SledSession>) -> PoolSession {
    shared.pool_view()
}

#[tokio::test]
async fn pool_view_reads_shared_keys_and_never_writes() {
    let store = Store::temporary().unwrap();
    let shared = open(&store, BOT);
    shared
        .set_dc_option(&option(2, 1002, Some(2)))
        .await
        .unwrap();
    let pool = view(&shared);

    // getConfig on the pool rewrites an address: the pool sees it, the shared session doesn't.
    pool.set_dc_option(&option(2, 2002, Some(2))).await.unwrap();
    assert_eq!(pool.dc_option(2).unwrap().unwrap().ipv4.port(), 2002);
    assert_eq!(shared.dc_option(2).unwrap().unwrap().ipv4.port(), 1002);

    // A key the first pool creates later is visible to the view at once.
    assert_eq!(pool.dc_option(4).unwrap().unwrap().auth_key, None);
    shared
        .set_dc_option(&option(4, 1004, Some(4)))
        .await
        .unwrap();
    assert_eq!(pool.dc_option(4).unwrap().unwrap().auth_key, Some([4; 256]));

    // A key the pool generated itself loses to the shared one.
    pool.set_dc_option(&option(5, 1005, Some(50)))
        .await
        .unwrap();
    assert_eq!(
        pool.dc_option(5).unwrap().unwrap().auth_key,
        Some([50; 256])
    );
    shared
        .set_dc_option(&option(5, 1005, Some(5)))
        .await
        .unwrap();
    assert_eq!(pool.dc_option(5).unwrap().unwrap().auth_key, Some([5; 256]));

    pool.set_home_dc_id(1).await.unwrap();
    pool.set_update_state(UpdateState::Secondary { qts: 99 })
        .await
        .unwrap();
    pool.cache_peer(PeerInfo::Chat { id: 1 }).await.unwrap();
    assert_eq!(shared.home_dc_id().unwrap(), 2);
    assert_eq!(pool.home_dc_id().unwrap(), 2);
    assert_eq!(shared.updates_state().await.unwrap().qts, 0);
    assert_eq!(shared.peer(PeerId::chat(1).unwrap()).await.unwrap(), None);

    shared.set_home_dc_id(4).await.unwrap();
    assert_eq!(pool.home_dc_id().unwrap(), 4);
}
