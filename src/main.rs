fn main() {
    println!("cutover");
}
