fn main() {
    println!("tgcdn-edge {}", env!("CARGO_PKG_VERSION"));
}
