"""Reading raw frames and writing views."""
