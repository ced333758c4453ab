//! Writes `openapi.json` from the code: `cargo run -p referral-api --bin gen_openapi`.

use std::path::PathBuf;

fn spec_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../openapi.json")
}

fn spec() -> String {
    format!("{}\n", referral_api::spec_json())
}

fn main() -> std::io::Result<()> {
    std::fs::write(spec_path(), spec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checked_in_openapi_json_matches_the_code() {
        let checked_in = std::fs::read_to_string(spec_path()).unwrap_or_default();
        assert!(
            checked_in == spec(),
            "openapi.json is out of date; regenerate it with `cargo run -p referral-api --bin gen_openapi`"
        );
    }
}
