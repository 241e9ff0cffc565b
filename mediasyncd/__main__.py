from mediasyncd.launch import entry

entry()
