"""dojo: the learner's and instructor's tool for torch-katas (progress, hints, stubs, grading)."""
