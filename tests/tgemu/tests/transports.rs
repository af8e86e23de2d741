//! The abridged and intermediate transports, detected from the first bytes, with
//! grammers-mtproto's own client-side implementations.

mod common;

use common::*;
use grammers_client::tl;
use grammers_mtproto::transport::{Abridged, Full, Intermediate, Transport};
use grammers_mtsender::{ServerAddr, connect_with_auth};

async fn config_over<T: Transport>(transport: T) {
    let emu = emulator().await;
    let key = emu.provision_auth_key();
    let addr = ServerAddr::Tcp {
        address: emu.dc_addr(4),
    };
    let mut sender = within(connect_with_auth(transport, addr, key))
        .await
        .expect("connect");
    let request = tl::functions::InvokeWithLayer {
        layer: tl::LAYER,
        query: tl::functions::InitConnection {
            api_id: API_ID,
            device_model: "test".into(),
            system_version: "test".into(),
            app_version: "test".into(),
            system_lang_code: "en".into(),
            lang_pack: String::new(),
            lang_code: "en".into(),
            proxy: None,
            params: None,
            query: tl::functions::help::GetConfig {},
        },
    };
    let tl::enums::Config::Config(config) = within(sender.invoke(&request)).await.expect("config");
    assert_eq!(config.this_dc, 4);
    let mut advertised: Vec<(i32, String)> = config
        .dc_options
        .iter()
        .map(|tl::enums::DcOption::Option(o)| (o.id, format!("{}:{}", o.ip_address, o.port)))
        .collect();
    advertised.sort();
    let mut expected: Vec<(i32, String)> = emu
        .dc_options()
        .into_iter()
        .map(|(dc, addr)| (dc, addr.to_string()))
        .collect();
    expected.sort();
    assert_eq!(
        advertised, expected,
        "only the emulator's loopback addresses"
    );
}

#[tokio::test]
async fn abridged() {
    config_over(Abridged::new()).await;
}

#[tokio::test]
async fn intermediate() {
    config_over(Intermediate::new()).await;
}

#[tokio::test]
async fn full() {
    config_over(Full::new()).await;
}
