//! Using `minica-ca` as a library: open (or create) a CA, issue a leaf,
//! write its files; or issue many leaves in one durable batch and print
//! the rate.
//!
//! ```text
//! cargo run --example issue -- [--home DIR] [NAME]
//! cargo run --release --example issue -- --home /tmp/bench-ca --batch 10000
//! ```
//!
//! The first form writes `./NAME/{cert,chain,key,ca}.pem` like
//! `minica issue NAME`. The second issues N leaves named `bench-<i>` (ECDSA
//! P-256 keys) into the ledger only, with one flush for the whole batch, and
//! prints certificates per second (key generation, signing and the durable
//! ledger commit included).

use std::path::PathBuf;
use std::time::Instant;

use minica_ca::{Ca, CaHome, InitOptions, LeafRequest, Opened, Overwrite};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut home = PathBuf::from("minica-example-home");
    let mut name = String::from("svc-example");
    let mut batch: Option<usize> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--home" => home = args.next().ok_or("--home needs a directory")?.into(),
            "--batch" => batch = Some(args.next().ok_or("--batch needs a count")?.parse()?),
            _ => name = arg,
        }
    }

    let (ca, opened) = Ca::open_or_init(&CaHome::new(&home), &InitOptions::default())?;
    if opened == Opened::Created {
        println!("created a new CA in {}", home.display());
    }

    if let Some(n) = batch {
        // Unique names per run, so a second run does not collide.
        let run = minica_ca::Serial::random().to_hex();
        let requests: Vec<LeafRequest> = (0..n)
            .map(|i| {
                Ok(LeafRequest::new(
                    format!("bench-{}-{i}", &run[..8]).parse()?,
                ))
            })
            .collect::<Result<_, minica_ca::Error>>()?;
        let start = Instant::now();
        let issued = ca.issue_batch(&requests)?;
        let secs = start.elapsed().as_secs_f64();
        println!(
            "issued and durably recorded {} certificates in {secs:.3}s: {:.0} certificates/s",
            issued.len(),
            issued.len() as f64 / secs
        );
        return Ok(());
    }

    let request = LeafRequest::new(name.parse()?);
    let out = PathBuf::from(&name);
    let leaf = ca.issue_to_dir(&request, &out, Overwrite::Refuse)?;
    println!(
        "issued {} (serial {}) into {}/",
        leaf.record.name,
        leaf.record.serial,
        out.display()
    );
    Ok(())
}
