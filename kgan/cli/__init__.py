"""Console entry points (kgan-train, kgan-export, kgan-evaluate, kgan-generate, kgan-demo)."""
