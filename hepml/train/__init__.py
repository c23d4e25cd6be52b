"""The training system shared by every model of the project."""
