fn main() {
    println!("tgcdn-core {}", env!("CARGO_PKG_VERSION"));
}
