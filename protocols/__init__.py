"""Protocol cards (TOML), installed as package data of ddbench.protocols."""
