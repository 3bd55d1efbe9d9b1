"""The pure core: models, evaluation and planning. No I/O; the clock is passed in."""
