from mediasyncd.cli import main

raise SystemExit(main())
