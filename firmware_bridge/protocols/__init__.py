"""Sans-I/O protocol codecs: bytes in, events out; commands in, bytes out. No I/O here."""
