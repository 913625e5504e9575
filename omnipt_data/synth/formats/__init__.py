"""Writers of the synthetic world in each native format, one module per format."""
