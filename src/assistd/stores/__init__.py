"""One module per aggregate holding its SQL, returning frozen records built by `Record.from_row`."""
