"""Training, sampling and the run folder: everything that runs a generated model."""
