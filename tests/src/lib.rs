//! tgcdn-tests: the Telegram DC emulator, end-to-end tests and benchmarks.
