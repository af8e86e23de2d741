//! Builders for the large TL objects the emulator returns (users, channels, messages,
//! documents, photos, config), with every field spelled out once here so handlers stay short.
//! Pure: callers pass ids, dates and file references in.

use grammers_tl_types as tl;

pub struct UserView<'a> {
    pub id: i64,
    pub access_hash: i64,
    pub first_name: &'a str,
    pub username: Option<&'a str>,
    pub bot: bool,
    pub is_self: bool,
}

pub fn user(v: &UserView<'_>) -> tl::enums::User {
    tl::enums::User::User(tl::types::User {
        is_self: v.is_self,
        contact: false,
        mutual_contact: false,
        deleted: false,
        bot: v.bot,
        bot_chat_history: false,
        bot_nochats: false,
        verified: false,
        restricted: false,
        // grammers panics in complete_login on a min user or one without access_hash.
        min: false,
        bot_inline_geo: false,
        support: false,
        scam: false,
        apply_min_photo: false,
        fake: false,
        bot_attach_menu: false,
        premium: false,
        attach_menu_enabled: false,
        bot_can_edit: false,
        close_friend: false,
        stories_hidden: false,
        stories_unavailable: false,
        contact_require_premium: false,
        bot_business: false,
        bot_has_main_app: false,
        bot_forum_view: false,
        bot_forum_can_manage_topics: false,
        bot_can_manage_bots: false,
        bot_guestchat: false,
        bot_guard: false,
        id: v.id,
        access_hash: Some(v.access_hash),
        first_name: Some(v.first_name.to_owned()),
        last_name: None,
        username: v.username.map(str::to_owned),
        phone: None,
        photo: None,
        status: None,
        bot_info_version: v.bot.then_some(1),
        restriction_reason: None,
        bot_inline_placeholder: None,
        lang_code: None,
        emoji_status: None,
        usernames: None,
        stories_max_id: None,
        color: None,
        profile_color: None,
        bot_active_users: None,
        bot_verification_icon: None,
        send_paid_messages_stars: None,
        linked_community_id: None,
    })
}

pub fn channel(id: i64, access_hash: i64, title: &str, date: i32, admin: bool) -> tl::enums::Chat {
    tl::enums::Chat::Channel(tl::types::Channel {
        creator: false,
        left: false,
        broadcast: true,
        verified: false,
        megagroup: false,
        restricted: false,
        signatures: false,
        min: false,
        scam: false,
        has_link: false,
        has_geo: false,
        slowmode_enabled: false,
        call_active: false,
        call_not_empty: false,
        fake: false,
        gigagroup: false,
        noforwards: false,
        join_to_send: false,
        join_request: false,
        forum: false,
        stories_hidden: false,
        stories_hidden_min: false,
        stories_unavailable: false,
        signature_profiles: false,
        autotranslation: false,
        broadcast_messages_allowed: false,
        monoforum: false,
        forum_tabs: false,
        id,
        access_hash: Some(access_hash),
        title: title.to_owned(),
        username: None,
        photo: tl::enums::ChatPhoto::Empty,
        date,
        restriction_reason: None,
        admin_rights: admin.then(admin_rights),
        banned_rights: None,
        default_banned_rights: None,
        participants_count: None,
        usernames: None,
        stories_max_id: None,
        color: None,
        profile_color: None,
        emoji_status: None,
        level: None,
        subscription_until_date: None,
        bot_verification_icon: None,
        send_paid_messages_stars: None,
        linked_monoforum_id: None,
        linked_community_id: None,
    })
}

fn admin_rights() -> tl::enums::ChatAdminRights {
    tl::enums::ChatAdminRights::Rights(tl::types::ChatAdminRights {
        change_info: false,
        post_messages: true,
        edit_messages: true,
        delete_messages: true,
        ban_users: false,
        invite_users: false,
        pin_messages: false,
        add_admins: false,
        anonymous: false,
        manage_call: false,
        other: false,
        manage_topics: false,
        post_stories: false,
        edit_stories: false,
        delete_stories: false,
        manage_direct_messages: false,
        manage_ranks: false,
        manage_linked_peers: false,
        manage_welcome_messages: false,
    })
}

pub struct DocumentView<'a> {
    pub id: i64,
    pub access_hash: i64,
    pub file_reference: Vec<u8>,
    pub date: i32,
    pub mime_type: &'a str,
    pub size: i64,
    pub dc_id: i32,
    pub file_name: &'a str,
}

pub fn document_media(d: DocumentView<'_>) -> tl::enums::MessageMedia {
    let document = tl::enums::Document::Document(tl::types::Document {
        id: d.id,
        access_hash: d.access_hash,
        file_reference: d.file_reference,
        date: d.date,
        mime_type: d.mime_type.to_owned(),
        size: d.size,
        thumbs: None,
        video_thumbs: None,
        dc_id: d.dc_id,
        attributes: vec![tl::enums::DocumentAttribute::Filename(
            tl::types::DocumentAttributeFilename {
                file_name: d.file_name.to_owned(),
            },
        )],
    });
    tl::enums::MessageMedia::Document(tl::types::MessageMediaDocument {
        nopremium: false,
        spoiler: false,
        video: false,
        round: false,
        voice: false,
        document: Some(document),
        alt_documents: None,
        video_cover: None,
        video_timestamp: None,
        ttl_seconds: None,
    })
}

pub struct PhotoSizeView<'a> {
    pub kind: &'a str,
    pub w: i32,
    pub h: i32,
    pub size: i64,
}

pub struct PhotoView<'a> {
    pub id: i64,
    pub access_hash: i64,
    pub file_reference: Vec<u8>,
    pub date: i32,
    pub dc_id: i32,
    pub sizes: Vec<PhotoSizeView<'a>>,
}

/// `messageMediaPhoto`: the large sizes (`y`, `w`) as `photoSizeProgressive` with the
/// byte offsets of three scans (the last one the whole size), the others as `photoSize`.
pub fn photo_media(p: PhotoView<'_>) -> tl::enums::MessageMedia {
    let sizes = p
        .sizes
        .iter()
        .map(|size| match size.kind {
            "y" | "w" => tl::enums::PhotoSize::Progressive(tl::types::PhotoSizeProgressive {
                r#type: size.kind.to_owned(),
                w: size.w,
                h: size.h,
                sizes: vec![
                    (size.size / 8) as i32,
                    (size.size / 2) as i32,
                    size.size as i32,
                ],
            }),
            _ => tl::enums::PhotoSize::Size(tl::types::PhotoSize {
                r#type: size.kind.to_owned(),
                w: size.w,
                h: size.h,
                size: size.size as i32,
            }),
        })
        .collect();
    tl::enums::MessageMedia::Photo(tl::types::MessageMediaPhoto {
        spoiler: false,
        live_photo: false,
        photo: Some(tl::enums::Photo::Photo(tl::types::Photo {
            has_stickers: false,
            id: p.id,
            access_hash: p.access_hash,
            file_reference: p.file_reference,
            date: p.date,
            sizes,
            video_sizes: None,
            dc_id: p.dc_id,
        })),
        ttl_seconds: None,
        video: None,
    })
}

pub struct MessageView {
    pub id: i32,
    pub out: bool,
    pub post: bool,
    pub from_id: Option<tl::enums::Peer>,
    pub peer_id: tl::enums::Peer,
    pub fwd_from: Option<tl::enums::MessageFwdHeader>,
    pub date: i32,
    pub text: String,
    pub media: Option<tl::enums::MessageMedia>,
}

pub fn message(v: MessageView) -> tl::enums::Message {
    tl::enums::Message::Message(tl::types::Message {
        out: v.out,
        mentioned: false,
        media_unread: false,
        silent: false,
        post: v.post,
        from_scheduled: false,
        legacy: false,
        edit_hide: false,
        pinned: false,
        noforwards: false,
        invert_media: false,
        offline: false,
        video_processing_pending: false,
        paid_suggested_post_stars: false,
        paid_suggested_post_ton: false,
        id: v.id,
        from_id: v.from_id,
        from_boosts_applied: None,
        from_rank: None,
        peer_id: v.peer_id,
        saved_peer_id: None,
        fwd_from: v.fwd_from,
        via_bot_id: None,
        via_business_bot_id: None,
        guestchat_via_from: None,
        reply_to: None,
        date: v.date,
        message: v.text,
        media: v.media,
        reply_markup: None,
        entities: None,
        views: None,
        forwards: None,
        replies: None,
        edit_date: None,
        post_author: None,
        grouped_id: None,
        reactions: None,
        restriction_reason: None,
        ttl_period: None,
        quick_reply_shortcut_id: None,
        effect: None,
        factcheck: None,
        report_delivery_until_date: None,
        paid_message_stars: None,
        suggested_post: None,
        schedule_repeat_period: None,
        summary_from_language: None,
        rich_message: None,
    })
}

pub fn forward_header(from: tl::enums::Peer, date: i32) -> tl::enums::MessageFwdHeader {
    tl::enums::MessageFwdHeader::Header(tl::types::MessageFwdHeader {
        imported: false,
        saved_out: false,
        from_id: Some(from),
        from_name: None,
        date,
        channel_post: None,
        post_author: None,
        saved_from_peer: None,
        saved_from_msg_id: None,
        saved_from_id: None,
        saved_from_name: None,
        saved_date: None,
        psa_type: None,
    })
}

pub fn empty_message(id: i32) -> tl::enums::Message {
    tl::enums::Message::Empty(tl::types::MessageEmpty { id, peer_id: None })
}

pub fn peer_user(user_id: i64) -> tl::enums::Peer {
    tl::enums::Peer::User(tl::types::PeerUser { user_id })
}

pub fn peer_channel(channel_id: i64) -> tl::enums::Peer {
    tl::enums::Peer::Channel(tl::types::PeerChannel { channel_id })
}

/// `help.getConfig`: only the emulator's own loopback addresses, all static, so grammers'
/// `update_config` never learns a real Telegram address.
pub fn config(this_dc: i32, dcs: &[(i32, std::net::SocketAddr)], date: i32) -> tl::enums::Config {
    let dc_options = dcs
        .iter()
        .map(|(id, addr)| {
            tl::enums::DcOption::Option(tl::types::DcOption {
                ipv6: false,
                media_only: false,
                tcpo_only: false,
                cdn: false,
                r#static: true,
                this_port_only: false,
                id: *id,
                ip_address: addr.ip().to_string(),
                port: addr.port() as i32,
                secret: None,
            })
        })
        .collect();
    tl::enums::Config::Config(tl::types::Config {
        default_p2p_contacts: false,
        preload_featured_stickers: false,
        revoke_pm_inbox: false,
        blocked_mode: false,
        force_try_ipv6: false,
        date,
        expires: date + 3600,
        test_mode: false,
        this_dc,
        dc_options,
        dc_txt_domain_name: String::new(),
        chat_size_max: 200,
        megagroup_size_max: 200_000,
        forwarded_count_max: 100,
        online_update_period_ms: 210_000,
        offline_blur_timeout_ms: 5_000,
        offline_idle_timeout_ms: 30_000,
        online_cloud_timeout_ms: 300_000,
        notify_cloud_delay_ms: 30_000,
        notify_default_delay_ms: 1_500,
        push_chat_period_ms: 60_000,
        push_chat_limit: 2,
        edit_time_limit: 172_800,
        revoke_time_limit: i32::MAX,
        revoke_pm_time_limit: i32::MAX,
        rating_e_decay: 2_419_200,
        stickers_recent_limit: 200,
        channels_read_media_period: 604_800,
        tmp_sessions: None,
        call_receive_timeout_ms: 20_000,
        call_ring_timeout_ms: 90_000,
        call_connect_timeout_ms: 30_000,
        call_packet_timeout_ms: 10_000,
        me_url_prefix: "https://t.me/".to_owned(),
        autoupdate_url_prefix: None,
        gif_search_username: None,
        venue_search_username: None,
        img_search_username: None,
        static_maps_provider: None,
        caption_length_max: 1024,
        message_length_max: 4096,
        webfile_dc_id: this_dc,
        suggested_lang_code: None,
        lang_pack_version: None,
        base_lang_pack_version: None,
        reactions_default: None,
        autologin_token: None,
    })
}
