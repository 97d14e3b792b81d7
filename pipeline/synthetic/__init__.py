"""SYNTHETIC cohorts: the bundled demo study (:mod:`.demo`) and registry-sized studies for the
benchmark (:mod:`.registry`). Same seed, same bytes."""
