//! Writes the seed corpus (`sockio_fuzz::seeds`) to `corpus/<target>/seed-*`.

fn main() -> std::io::Result<()> {
    let root = sockio_fuzz::crate_dir().join("corpus");
    let seeds = sockio_fuzz::seeds::all();
    for (target, name, data) in &seeds {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join(name), data)?;
    }
    println!("wrote {} seeds under {}", seeds.len(), root.display());
    Ok(())
}
