from contextkb_cli.cli import main

raise SystemExit(main())
