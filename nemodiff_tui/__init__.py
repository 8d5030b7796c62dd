"""nemodiff's user interface: the command line and the Textual app."""
