"""One module per network family; each defines `build(...)`. See `kgan.networks`."""
