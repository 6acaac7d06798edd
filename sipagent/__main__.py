from sipagent.cli import main

raise SystemExit(main())
