//! tgcdn-core: the one long-lived process that talks to Telegram.
