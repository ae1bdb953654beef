"""HTTP endpoints: thin handlers that validate at the edge and hand work to the pipeline."""
