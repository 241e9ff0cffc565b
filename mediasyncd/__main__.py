from mediasyncd.cli import entry

entry()
