"""dojo: the learner's and instructor's tool for torch-katas (progress, hints, stubs, grading)."""

import time

# When the command started, before torch is imported: `dojo train` reports its wall time from here.
STARTED = time.perf_counter()
