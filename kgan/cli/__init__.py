"""Console entry points (kgan-train, kgan-export, kgan-evaluate)."""
