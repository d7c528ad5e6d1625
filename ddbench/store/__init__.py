"""What ddbench writes and reads back: the distilled-set format, result rows and the append-only store."""
