"""Protocol cards: loading, validating and hashing the TOML recipes in protocols/."""
