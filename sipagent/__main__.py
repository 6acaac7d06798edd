from sipagent.cli.main import main

raise SystemExit(main())
