"""Utilities shared by the predictor, the demo and the tools: media I/O and drawing."""
