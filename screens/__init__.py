"""The wizard's Textual screens."""
